"""Every real sample in shared/data/formats: read, convert to messages and back, then to every
writer; messages -> sharegpt -> messages is lossless."""

from __future__ import annotations

import pytest

from convkit.formats import get_format
from convkit.io import RecordWriter, read_records
from convkit.model import Conversation

pytestmark = pytest.mark.realdata

# file, reader, conversations expected
SAMPLES = [
    ("alpaca/alpaca_data_cleaned_1000.json", "alpaca", 1000),
    ("dolly/databricks-dolly-15k.first34.jsonl", "dolly", 34),
    ("oasst1/en_100_tree.jsonl", "oasst", 546),
    ("oasst1/en_100_message.jsonl", "oasst", 546),
    ("baize/quora_chat_data.ko.json", "baize", 96),
    ("super_natural_instructions/task1146_country_capital.json", "super-ni", 231),
    ("openai_chat/toy_chat_fine_tuning.jsonl", "messages", 5),
]
IDS = [s[0].split("/")[0] + "/" + s[0].split("/")[1][:12] for s in SAMPLES]


def convs(path, reader):
    items = list(get_format(reader).read_stream(read_records(path)))
    assert not [i for i in items if not isinstance(i, Conversation)]
    return items


def as_tuples(items):
    return [(c.id, [(t.role, t.content) for t in c.turns], c.meta) for c in items]


def write_and_read(tmp_path, name, fmt, items):
    path = tmp_path / name
    rejected = []
    with RecordWriter(path) as w:
        for c in items:
            try:
                w.write(get_format(fmt).write(c))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                rejected.append(e)
    return [r.value for r in read_records(path)], rejected


@pytest.mark.parametrize("rel,reader,count", SAMPLES, ids=IDS)
def test_auto_detection_agrees_with_the_named_reader(shared_data, rel, reader, count):
    path = shared_data / "formats" / rel
    named = convs(path, reader)
    auto = list(get_format("auto").read_stream(read_records(path)))
    assert len(named) == count
    assert as_tuples(auto) == as_tuples(named)


@pytest.mark.parametrize("rel,reader,count", SAMPLES, ids=IDS)
def test_to_messages_and_back_then_to_every_writer(shared_data, tmp_path, rel, reader, count):
    original = convs(shared_data / "formats" / rel, reader)
    # -> messages file -> conversations again: nothing lost
    records, rejected = write_and_read(tmp_path, "m.jsonl", "messages", original)
    assert not rejected and len(records) == count
    back = convs(tmp_path / "m.jsonl", "messages")
    assert as_tuples(back) == as_tuples(original)

    # messages -> sharegpt -> messages is lossless, record for record, per-turn keys included
    _, rejected = write_and_read(tmp_path, "s.json", "sharegpt", back)
    assert not rejected
    via = convs(tmp_path / "s.json", "sharegpt")
    assert [get_format("messages").write(c) for c in via] == records

    # alpaca: single exchanges written, the rest rejected with a reason
    single = [
        c
        for c in back
        if c.roles()[-2:] == ["user", "assistant"]
        and c.roles().count("user") == 1
        and set(c.roles()) <= {"system", "user", "assistant"}
    ]
    recs, rejected = write_and_read(tmp_path, "a.jsonl", "alpaca", back)
    assert len(recs) == len(single) and len(recs) + len(rejected) == count
    assert {e.reason for e in rejected} <= {"not_single_exchange"}
    assert [c.id for c in convs(tmp_path / "a.jsonl", "alpaca")] == [c.id for c in single]

    # text through every built-in template: rendered, or rejected with template_error
    for template in ("chatml", "llama-2", "llama-3", "vicuna-v1.1", "alpaca"):
        out, rejected = [], []
        fmt = get_format("text", template=template)
        for c in back:
            try:
                out.append(fmt.write(c))
            except Exception as e:  # noqa: BLE001
                rejected.append(e)
        assert {e.reason for e in rejected} <= {"template_error"}
        assert len(out) + len(rejected) == count
        assert all(o["text"] and o["convkit"]["template"] == template for o in out)
        if template == "chatml":
            assert not rejected


@pytest.mark.parametrize("rel,reader,count", SAMPLES, ids=IDS)
def test_parquet(shared_data, tmp_path, rel, reader, count):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    original = convs(shared_data / "formats" / rel, reader)
    fmt = get_format("parquet", row_group_size=100)
    path = tmp_path / "out.parquet"
    with fmt.open_sink(path) as sink:
        for c in original:
            sink.write(fmt.write(c))
    table = pq.read_table(path)
    assert table.num_rows == count
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [c.id for c in original]
    for r, c in zip(rows, original, strict=True):
        assert [(m["role"], m["content"]) for m in r["messages"]] == [
            (t.role, t.content) for t in c.turns
        ]
        assert (json.loads(r["meta"]) if r["meta"] else {}) == c.meta


def test_rendered_text_reads_back_to_the_same_turns(shared_data, tmp_path):
    original = convs(shared_data / "formats" / "oasst1" / "en_100_tree.jsonl", "oasst")[:100]
    _, rejected = write_and_read(tmp_path, "t.jsonl", "text", original)
    assert not rejected
    back = convs(tmp_path / "t.jsonl", "text")
    assert [[(t.role, t.content) for t in c.turns] for c in back] == [
        [(t.role, t.content) for t in c.turns] for c in original
    ]
    assert [c.id for c in back] == [c.id for c in original]


def test_messages_sharegpt_messages_keeps_per_turn_keys(shared_data, tmp_path):
    original = convs(shared_data / "formats" / "oasst1" / "en_100_tree.jsonl", "oasst")[:5]
    records = [get_format("messages").write(c) for c in original]
    via = [get_format("sharegpt").write(c) for c in original]
    back = [
        c for i, r in enumerate(via) for c in get_format("sharegpt").read(r, original[i].source)
    ]
    assert [get_format("messages").write(c) for c in back] == records


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from convkit.errors import ConfigError

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ConfigError) as e:
        get_format("parquet").open_sink(tmp_path / "x.parquet")
    assert str(e.value) == (
        "writing parquet needs pyarrow: pip install 'convkit[parquet]' (or pip install pyarrow)"
    )


def test_an_output_named_parquet_is_parquet_unless_told_otherwise(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    from convkit import FilterConfig, convert

    src = tmp_path / "in.jsonl"
    rec = {"id": "a", "conversations": [{"from": "human", "value": "What is up?"},
                                        {"from": "gpt", "value": "The sky, mostly."}]}
    src.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "out.PARQUET"
    result = convert(src, out, filters=FilterConfig(min_chars=0))
    assert result.stats.conversations_out == 1
    assert [r["id"] for r in pq.read_table(out).to_pylist()] == ["a"]
    named = tmp_path / "named.parquet"
    convert(src, named, output_format="sharegpt", filters=FilterConfig(min_chars=0))
    assert json.loads(named.read_text()) == rec  # the format asked for, whatever the name


def test_parquet_sink_aborts_cleanly_and_refuses_stdout(tmp_path):
    pytest.importorskip("pyarrow")
    from convkit.errors import ConfigError

    fmt = get_format("parquet")
    with pytest.raises(ConfigError, match="^parquet output needs a file name, not stdout$"):
        fmt.open_sink("-")
    with pytest.raises(ConfigError) as e:
        fmt.open_sink(tmp_path / "x.parquet.gz")
    assert str(e.value) == (
        "parquet output is not compressed as a whole (parquet compresses its columns): name it "
        f"without .gz: {tmp_path / 'x.parquet.gz'}"
    )
    with pytest.raises(RuntimeError), fmt.open_sink(tmp_path / "x.parquet") as sink:
        sink.write({"id": "a", "messages": [], "meta": None})
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file left


def test_parquet_rejects_the_one_conversation_with_a_lone_surrogate_and_goes_on(tmp_path):
    pytest.importorskip("pyarrow")
    import json

    import pyarrow.parquet as pq

    from convkit import convert

    src = tmp_path / "in.jsonl"
    good = {"id": "good", "messages": [{"role": "developer", "content": "Be terse."},
                                       {"role": "user", "content": "Say something nice"},
                                       {"role": "assistant", "content": "Something nice."}]}
    bad = {"id": "bad", "messages": [{"role": "user", "content": "a\ud800b is odd"},
                                     {"role": "assistant", "content": "It is a lone surrogate."}]}
    # json.dumps writes the lone surrogate as the escape a real dump would hold.
    src.write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    out, rejects = tmp_path / "o.parquet", tmp_path / "r.jsonl"
    result = convert(src, out, rejects=rejects, input_format="messages",
                     output_format="parquet", workers=1)
    assert result.stats.conversations_out == 1 and result.stats.accounted
    (rejected,) = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert (rejected["id"], rejected["reason"], rejected["detail"]) == (
        "bad",
        "unstorable_text",
        "messages[0].content holds a lone surrogate (read from a JSON \\ud800 escape), which "
        "parquet cannot store; a JSON output keeps it",
    )
    (row,) = pq.read_table(out).to_pylist()
    # The role as read, as the messages writer writes it.
    assert [m["role"] for m in row["messages"]] == ["developer", "user", "assistant"]


def test_parquet_refuses_a_lone_surrogate_with_a_clear_error(tmp_path):
    pytest.importorskip("pyarrow")
    from convkit import OutputError

    sink = get_format("parquet").open_sink(tmp_path / "x.parquet")
    sink.write({"id": "a", "messages": [{"role": "user", "content": "a\ud800b"}], "meta": None})
    with pytest.raises(OutputError) as e:
        sink.commit()
    assert str(e.value) == (
        f"cannot write {tmp_path / 'x.parquet'}: a string holds a lone surrogate (read from a "
        "JSON \\ud800 escape), which parquet cannot store; write JSON instead"
    )
    assert list(tmp_path.iterdir()) == []
