"""convkit.convert end to end on small inputs written for the tests."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from convkit import ConfigError, FilterConfig, InputError, Options, convert
from convkit.errors import OutputError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKENIZER = str(EXAMPLES / "tokenizer.json")
PAGE = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'


def sg(rid, *turns, **extra):
    return {"id": rid, "conversations": [{"from": f, "value": v} for f, v in turns], **extra}


def write_json(tmp_path, records, name="in.json"):
    p = tmp_path / name
    p.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return p


def lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def run(tmp_path, records, **kw):
    src = write_json(tmp_path, records)
    out, rej, st = tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "stats.json"
    result = convert(src, out, rejects=rej, stats=st, **kw)
    return lines(out), lines(rej), json.loads(st.read_text()), result


GOOD = sg(
    "a",
    ("human", "What is <b>bold</b> in HTML?"),
    ("gpt", PAGE.format("<p>It makes text <strong>bold</strong>: <code>snake_case</code>.</p>")),
)


def test_html_assistant_turns_become_markdown_and_user_text_stays(tmp_path):
    out, rej, stats, _ = run(tmp_path, [GOOD])
    assert out == [
        {
            "id": "a",
            "conversations": [
                {"from": "human", "value": "What is <b>bold</b> in HTML?"},
                {"from": "gpt", "value": "It makes text **bold**: `snake_case`."},
            ],
        }
    ]
    assert rej == []
    assert stats["conversations_in"] == 1 and stats["conversations_out"] == 1
    assert stats["html_turns_converted"] == 1


def test_metadata_is_kept_and_roles_are_written_with_fastchat_names(tmp_path):
    rec = sg(
        "m",
        ("user", "Tell me a joke please"),
        ("chatgpt", "Why did the chicken cross?"),
        model="gpt-4",
    )
    out, _, _, _ = run(tmp_path, [rec])
    assert out == [
        {
            "id": "m",
            "conversations": [
                {"from": "human", "value": "Tell me a joke please"},
                {"from": "gpt", "value": "Why did the chicken cross?"},
            ],
            "model": "gpt-4",
        }
    ]


def test_messages_output(tmp_path):
    out, _, _, _ = run(tmp_path, [GOOD], output_format="messages")
    assert out == [
        {
            "id": "a",
            "messages": [
                {"role": "user", "content": "What is <b>bold</b> in HTML?"},
                {"role": "assistant", "content": "It makes text **bold**: `snake_case`."},
            ],
        }
    ]


def test_every_conversation_is_accounted_for(tmp_path):
    records = [
        GOOD,
        sg("dup", *[(t["from"], t["value"]) for t in GOOD["conversations"]]),
        sg("short", ("human", "hi"), ("gpt", "yo")),
        sg("blocked", ("human", "Who made you, really?"), ("gpt", "OpenAI trained me as a model.")),
        {"id": "bad", "conversations": {"from": "human"}},
        sg(
            "trail",
            ("human", "Name a colour please"),
            ("gpt", "Blue is a colour."),
            ("human", "And?"),
        ),
    ]
    out, rej, stats, result = run(tmp_path, records)
    assert [o["id"] for o in out] == ["a", "trail"]
    assert [(r["id"], r["reason"], r["scope"]) for r in rej] == [
        ("dup", "duplicate_content", "conversation"),
        ("short", "too_short", "conversation"),
        ("blocked", "blocked_phrase", "conversation"),
        ("bad", "invalid_record", "record"),
        ("trail", "trailing_user_turn", "turns"),
    ]
    assert stats["conversations_in"] == 6
    assert stats["conversations_out"] == 2
    assert stats["rejected_by_reason"] == {
        "blocked_phrase": 1,
        "duplicate_content": 1,
        "invalid_record": 1,
        "too_short": 1,
    }
    assert stats["parts_rejected_by_reason"] == {"trailing_user_turn": 1}
    assert stats["accounted"] is True
    assert result.stats.balanced and result.stats.accounted


def test_a_broken_array_skipped_past_its_error_is_not_accounted(tmp_path):
    # An array cannot be read past a missing comma: the records after it were never counted.
    src = tmp_path / "bad.json"
    src.write_text("[" + json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "," + json.dumps(GOOD) + "]")
    out, rej, st = tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "stats.json"
    result = convert(src, out, rejects=rej, stats=st, on_error="skip")
    assert [r["reason"] for r in lines(rej)] == ["malformed_json"]
    assert lines(rej)[0]["detail"].endswith("; the rest of this input could not be read")
    assert result.stats.balanced and not result.stats.accounted
    stats = json.loads(st.read_text())
    assert (stats["accounted"], stats["inputs_cut_short"]) == (False, [str(src)])
    assert result.stats.summary().splitlines()[-1] == (
        f"  not read past its error (records after it are not counted): {src}"
    )


def test_reject_lines_carry_where_and_the_original_record(tmp_path):
    rec = sg("short", ("human", "hi"), ("gpt", "yo"))
    _, rej, _, _ = run(tmp_path, [GOOD, rec])
    assert rej == [
        {
            "id": "short",
            "reason": "too_short",
            "file": str(tmp_path / "in.json"),
            "index": 1,
            "line": 1,
            "scope": "conversation",
            "record": rec,
        }
    ]


def test_dropped_turns_are_in_the_rejects(tmp_path):
    rec = sg(
        "t",
        ("gpt", "Hello, how can I help?"),
        ("human", "Say something long"),
        ("gpt", "Something long."),
    )
    out, rej, _, _ = run(tmp_path, [rec])
    assert [t["from"] for t in out[0]["conversations"]] == ["human", "gpt"]
    assert rej[0] == {
        "id": "t",
        "reason": "leading_non_user",
        "file": rej[0]["file"],
        "index": 0,
        "line": 1,
        "scope": "turns",
        "turns": [{"role": "assistant", "content": "Hello, how can I help?"}],
    }  # no copy of the record: file and index locate it, the rest is in the output
    assert rej[0]["file"].endswith(".json")


def test_wrong_shapes_are_rejected_not_crashed(tmp_path):
    records = [
        [1, 2],
        {"id": "x"},
        {"id": "y", "conversations": [{"from": "robot", "value": "beep"}]},
        {"id": "z", "conversations": [{"from": "human", "value": 3}]},
    ]
    _, rej, stats, _ = run(tmp_path, records)
    assert [(r["id"], r["reason"], r["detail"]) for r in rej] == [
        (None, "invalid_record", "expected a JSON object, got array"),
        ("x", "invalid_record", 'missing "conversations"'),
        ("y", "unknown_role", "unknown speaker 'robot' in conversations[0].from"),
        ("z", "invalid_record", "expected conversations[0].value to be a string, got number"),
    ]
    assert stats["conversations_out"] == 0 and stats["accounted"] is True


def test_empty_input_gives_empty_output(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    out = tmp_path / "out.jsonl"
    result = convert(src, out)
    assert out.read_text() == ""
    assert result.stats.conversations_in == 0


def test_malformed_json_fails_and_writes_nothing(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(GOOD) + "\n{oops\n")
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    with pytest.raises(InputError) as e:
        convert(src, out, rejects=rej)
    assert str(e.value) == (
        f"malformed JSON: Expecting property name enclosed in double quotes (column 2) — at {src} line 2"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_malformed_json_skip_sends_the_line_to_the_rejects(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(GOOD) + "\n{oops\n")
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    result = convert(src, out, rejects=rej, on_error="skip")
    assert [o["id"] for o in lines(out)] == ["a"]
    assert lines(rej) == [
        {
            "id": None,
            "reason": "malformed_json",
            "detail": f"malformed JSON: Expecting property name enclosed in double quotes (column 2) — at {src} line 2",
            "file": str(src),
            "index": 1,
            "line": 2,
            "scope": "record",
            "record": "{oops",
        }
    ]
    assert result.stats.balanced


def test_several_inputs_and_json_array_output(tmp_path):
    a = write_json(tmp_path, [GOOD], "a.json")
    b = tmp_path / "b.jsonl"
    b.write_text(
        json.dumps(sg("b", ("human", "Another question here"), ("gpt", "Another answer."))) + "\n"
    )
    out = tmp_path / "out.json"
    convert([a, b], out)
    assert [r["id"] for r in json.loads(out.read_text())] == ["a", "b"]


def test_splitting_with_the_example_tokenizer(tmp_path):
    long = sg(
        "long",
        ("system", "Be brief."),
        *[
            (who, f"{text} {i}")
            for i in range(6)
            for who, text in (
                ("human", "Tell me about planet number"),
                ("gpt", "It is a planet far away " * 5),
            )
        ],
    )
    out, rej, stats, _ = run(tmp_path, [long], tokenizer=TOKENIZER, max_tokens=120)
    ids = [o["id"] for o in out]
    assert ids == [f"long_{k}" for k in range(len(ids))] and len(ids) > 1
    for o in out:
        turns = o["conversations"]
        assert turns[0] == {"from": "system", "value": "Be brief."}
        assert turns[1]["from"] == "human" and turns[-1]["from"] == "gpt"
    assert sum(len(o["conversations"]) - 1 for o in out) == 12  # every exchange kept once
    assert rej == []
    assert stats["segments"] == len(ids) and stats["tokens"] > 0


def test_oversize_exchange_is_dropped_and_the_rest_kept(tmp_path):
    rec = sg(
        "o",
        ("human", "Short question one"),
        ("gpt", "Short answer one."),
        ("human", "Long question"),
        ("gpt", "word " * 400),
        ("human", "Short question three"),
        ("gpt", "Short answer three."),
    )
    out, rej, stats, _ = run(tmp_path, [rec], tokenizer=TOKENIZER, max_tokens=100)
    # No segment spans a dropped part: the exchanges on either side are packed apart.
    assert [(o["id"], [t["value"] for t in o["conversations"]]) for o in out] == [
        ("o_0", ["Short question one", "Short answer one."]),
        ("o_1", ["Short question three", "Short answer three."]),
    ]
    assert [(r["reason"], r["scope"], [t["content"][:13] for t in r["turns"]]) for r in rej] == [
        ("oversize_exchange", "turns", ["Long question", "word word wor"])
    ]
    assert stats["parts_rejected_by_reason"] == {"oversize_exchange": 1}


def test_oversize_keep_writes_a_flagged_segment(tmp_path):
    rec = sg("o", ("human", "Long question"), ("gpt", "word " * 400))
    out, rej, _, _ = run(tmp_path, [rec], tokenizer=TOKENIZER, max_tokens=100, oversize="keep")
    assert [(o["id"], o["oversize"]) for o in out] == [("o_0", True)]
    assert rej == []


def test_all_exchanges_oversize_rejects_the_conversation(tmp_path):
    rec = sg("o", ("human", "Long question"), ("gpt", "word " * 400))
    out, rej, stats, _ = run(tmp_path, [rec], tokenizer=TOKENIZER, max_tokens=100)
    assert out == []
    assert [(r["id"], r["reason"], r["scope"]) for r in rej] == [
        ("o", "oversize_exchange", "conversation")
    ]
    assert stats["accounted"] is True


def test_output_is_identical_whatever_the_number_of_workers(tmp_path):
    records = [
        sg(
            f"c{i}",
            ("human", f"Question number {i} please"),
            ("gpt", PAGE.format(f"<p>Answer <em>{i}</em></p>")),
        )
        for i in range(150)
    ] + [GOOD, GOOD]
    src = write_json(tmp_path, records)
    blobs = []
    for workers in (1, 2, 3):
        out, rej = tmp_path / f"o{workers}.jsonl", tmp_path / f"r{workers}.jsonl"
        convert(
            src,
            out,
            rejects=rej,
            workers=workers,
            batch_size=16,
            tokenizer=TOKENIZER,
            max_tokens=64,
        )
        blobs.append((out.read_bytes(), rej.read_bytes()))
    assert blobs[0] == blobs[1] == blobs[2]
    assert blobs[0][0].count(b"\n") == 151


def test_filters_can_be_tuned(tmp_path):
    rec = sg("short", ("human", "hi"), ("gpt", "yo"))
    out, _, _, _ = run(tmp_path, [rec], filters=FilterConfig(min_chars=0))
    assert [o["id"] for o in out] == ["short"]
    out, _, _, _ = run(tmp_path, [rec], filters=FilterConfig(disabled=frozenset({"too_short"})))
    assert [o["id"] for o in out] == ["short"]


def test_html_never_leaves_assistant_turns_alone(tmp_path):
    out, _, _, _ = run(tmp_path, [GOOD], html="never")
    assert out[0]["conversations"][1]["value"] == GOOD["conversations"][1]["value"]


def test_fastchat_compat_mode(tmp_path):
    rec = sg("m", ("human", "Show me some code"), ("gpt", PAGE.format("<p>a_b</p>")))
    out, _, _, _ = run(tmp_path, [rec], compat="fastchat")
    assert out[0]["conversations"][1]["value"] == "a\\_b"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 10}, "max_tokens needs a tokenizer (--tokenizer PATH)"),
        ({"max_tokens": 0, "tokenizer": TOKENIZER}, "max_tokens must be a positive integer, got 0"),
        ({"oversize": "shrink"}, "oversize must be one of drop, keep; got 'shrink'"),
        ({"html": "maybe"}, "html must be one of auto, always, never; got 'maybe'"),
        ({"on_error": "ignore"}, "on_error must be one of fail, skip; got 'ignore'"),
        ({"workers": 0}, "workers must be a positive integer, got 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"compat": "axolotl"}, "unknown compat mode 'axolotl'; known: fastchat"),
        ({"html_engine": "bs4"}, "html_engine must be one of fast, markdownify; got 'bs4'"),
        (
            {"tokenizer": TOKENIZER, "max_tokens": 3, "turn_overhead": 1},
            "max_tokens 3 leaves no room for any exchange: segment_overhead 1 + 2 x turn_overhead 1 = 3",
        ),
    ],
)
def test_bad_options(tmp_path, kwargs, message):
    src = write_json(tmp_path, [GOOD])
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "out.jsonl", **kwargs)
    assert str(e.value) == message
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("output", "rejects", "stats"),
    [
        ("o.jsonl", "o.jsonl", None),
        ("o.jsonl", None, "o.jsonl"),
        ("-", "-", None),  # standard output, twice
        ("o.jsonl", "-", "-"),
        ("-", "/dev/stdout", None),  # the same, by two names
        ("/dev/fd/1", None, "-"),
    ],
)
def test_output_rejects_and_stats_must_be_different_files(tmp_path, output, rejects, stats):
    src = write_json(tmp_path, [GOOD])

    def where(name):
        return name if name in (None, "-") else tmp_path / name

    with pytest.raises(ConfigError) as e:
        convert(src, where(output), rejects=where(rejects), stats=where(stats))
    assert str(e.value) == "output, rejects and stats must be different files"
    assert not (tmp_path / "o.jsonl").exists()


def test_dev_null_may_take_all_three(tmp_path):
    src = write_json(tmp_path, [GOOD])
    assert convert(src, os.devnull, rejects=os.devnull, stats=os.devnull).stats.conversations_out == 1
    assert convert(os.devnull, os.devnull).stats.conversations_in == 0  # an empty input too


def test_output_must_not_overwrite_input(tmp_path):
    src = write_json(tmp_path, [GOOD])
    with pytest.raises(ConfigError) as e:
        convert(src, src)
    assert str(e.value) == f"output would overwrite the input {src}"


def test_options_object_and_keywords_do_not_mix(tmp_path):
    src = write_json(tmp_path, [GOOD])
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", options=Options(), html="never")
    assert str(e.value) == "pass either options= or keyword options, not both"


def test_other_input_formats(tmp_path):
    src = tmp_path / "alpaca.json"
    src.write_text(
        json.dumps([{"instruction": "Add 2 and 3.", "input": "", "output": "2 + 3 = 5."}])
    )
    out = tmp_path / "out.jsonl"
    convert(src, out, input_format="alpaca", output_format="messages")
    assert [m["content"] for m in lines(out)[0]["messages"]] == ["Add 2 and 3.", "2 + 3 = 5."]


def test_auto_detection_mixes_formats(tmp_path):
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        json.dumps({"instruction": "Add 2 and 3.", "output": "2 + 3 = 5."})
        + "\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Hello there, friend"},
                    {"role": "assistant", "content": "Hi!"},
                ]
            }
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    convert(src, out, input_format="auto", output_format="messages")
    assert [[m["role"] for m in r["messages"]] for r in lines(out)] == [["user", "assistant"]] * 2


def test_the_edit_counter_glued_to_user_turns_is_removed(tmp_path):
    rec = sg(
        "u",
        ("human", "2 / 2Write a haiku about rain"),
        ("gpt", PAGE.format("<p>Rain on the roof.</p>")),
    )
    keep = sg(
        "k",
        ("human", "1 / 2 cup of flour: how many grams?"),
        ("gpt", PAGE.format("<p>About 60 g.</p>")),
    )
    out, _, _, _ = run(tmp_path, [rec, keep])
    assert [o["conversations"][0]["value"] for o in out] == [
        "Write a haiku about rain",
        "1 / 2 cup of flour: how many grams?",
    ]


def test_fastchat_compat_converts_user_turns_too(tmp_path):
    rec = sg("c", ("human", "what is my_var in python?"), ("gpt", PAGE.format("<p>a_b</p>")))
    out, _, _, _ = run(tmp_path, [rec], compat="fastchat")
    assert [t["value"] for t in out[0]["conversations"]] == ["what is my\\_var in python?", "a\\_b"]


def test_both_html_engines_give_the_same_bytes(tmp_path):
    src = Path(__file__).resolve().parent.parent / "examples" / "sharegpt_sample.json"
    blobs = []
    for engine in ("fast", "markdownify"):
        out = tmp_path / f"{engine}.jsonl"
        convert(src, out, html_engine=engine)
        blobs.append(out.read_bytes())
    assert blobs[0] == blobs[1] and blobs[0].count(b"\n") == 5


def test_collector_thresholds_are_raised_during_a_run_and_restored_after(tmp_path, monkeypatch):
    import gc

    from convkit import pipeline, process

    before = gc.get_threshold()
    seen = []
    filter_batch = process.Worker.filter

    def spy(self, *args):
        seen.append(gc.get_threshold())
        return filter_batch(self, *args)

    monkeypatch.setattr(process.Worker, "filter", spy)
    src = write_json(tmp_path, [GOOD])
    convert(src, tmp_path / "o.jsonl", workers=1)
    assert seen == [(max(100_000, before[0]), *before[1:])]
    assert gc.get_threshold() == before
    # Restored on failure too.
    with pytest.raises(InputError), pipeline.rare_gc_passes():
        raise InputError("boom")
    assert gc.get_threshold() == before


@pytest.mark.parametrize("max_tokens", [None, 64])
def test_without_dedup_filters_the_output_rejects_and_stats_match_the_per_item_path(
    tmp_path, max_tokens
):
    # Without dedup filters a worker hands back whole batches of lines (process.Done); with
    # them, items go back one by one. On input without duplicates both must write the same.
    def records(k):
        return [
            sg(f"one{k}", ("human", f"First question {k}"), ("gpt", f"First answer {k}")),
            sg(
                f"lead{k}", ("gpt", "Hello, can I help?"), ("human", f"Colour {k}?"), ("gpt", "Red")
            ),
            sg(
                f"two{k}",
                ("human", f"Question one {k}"),
                ("gpt", "Answer one"),
                ("human", f"Question two {k}"),
                ("gpt", "Answer two " * 40),
            ),
            sg(
                f"three{k}",
                ("human", f"Q1 {k}"),
                ("gpt", "A1"),
                ("human", "Q2"),
                ("gpt", "A2"),
                ("human", "Q3"),
                ("gpt", "Answer three " * 7),
            ),
            sg(f"alone{k}", ("human", f"Nobody answers {k}")),
            {"id": f"broken{k}", "conversations": "not a list"},
        ]

    src = write_json(tmp_path, records(0) + records(1) + records(2))
    blobs = {}
    for dedup in (True, False):
        disabled = frozenset() if dedup else frozenset({"duplicate_id", "duplicate_content"})
        out, rej, st = tmp_path / f"o{dedup}.jsonl", tmp_path / f"r{dedup}.jsonl", tmp_path / "s"
        result = convert(
            src,
            out,
            rejects=rej,
            stats=st,
            output_format="alpaca",
            batch_size=4,
            filters=FilterConfig(disabled=disabled, min_chars=0),
            tokenizer=TOKENIZER if max_tokens else None,
            max_tokens=max_tokens,
        )
        stats = json.loads(st.read_text())
        del stats["seconds"], stats["options"]
        blobs[dedup] = (out.read_bytes(), rej.read_bytes(), stats, result.stats.balanced)
    assert blobs[True] == blobs[False]
    out, rej, stats, balanced = blobs[False]
    assert balanced
    split = max_tokens is not None
    ids = [json.loads(x)["id"] for x in out.splitlines()]
    # three: the alpaca writer refuses its first segment (two exchanges); the second is _0.
    per_input = ["one{}_0", "lead{}_0", "two{}_0", "three{}_0"] if split else ["one{}", "lead{}"]
    assert ids == [name.format(k) for k in range(3) for name in per_input]
    reasons = [(r["id"], r["reason"], r["scope"]) for r in map(json.loads, rej.splitlines())]
    assert reasons[:5] == [
        ("lead0", "leading_non_user", "turns"),
        (
            "two0",
            "oversize_exchange" if split else "not_single_exchange",
            "turns" if split else "conversation",
        ),
        ("three0", "not_single_exchange", "turns" if split else "conversation"),
        ("alone0", "too_few_turns", "conversation"),
        ("broken0", "invalid_record", "record"),
    ]
    assert len(reasons) == 15
    assert (stats["conversations_out"], stats["segments"]) == ((12, 12) if split else (6, 6))


@pytest.mark.parametrize(
    ("cores", "size", "max_tokens", "expected"),
    [
        (2, 1 << 20, None, 1),  # a small input: one process
        (2, 64 << 20, None, 1),  # a big one on two cores: HTML is converted on a thread
        (3, 64 << 20, None, 3),  # on more: every core
        (2, 64 << 20, 2048, 1),  # splitting on two cores: the tokenizer's threads take both
        (4, 64 << 20, 2048, 1),
        (8, 64 << 20, 2048, 8),
        (8, 64 << 20, None, 8),
    ],
)
def test_the_default_number_of_processes(monkeypatch, cores, size, max_tokens, expected):
    from convkit.markdown import fast

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.setattr(fast, "AVAILABLE", True)
    opts = Options(max_tokens=max_tokens, tokenizer=TOKENIZER if max_tokens else None)
    assert opts.resolved_workers(size) == expected
    # Where no HTML would be converted on a thread, two cores are two processes.
    for other in (Options(html="never"), Options(html_engine="markdownify")):
        assert other.resolved_workers(64 << 20) == cores
    monkeypatch.setattr(fast, "AVAILABLE", False)
    assert Options().resolved_workers(64 << 20) == cores
    assert Options(workers=3, max_tokens=max_tokens).resolved_workers(size) == 3


def test_the_default_batch_size_is_smaller_when_helpers_share_the_work(tmp_path, monkeypatch):
    assert [Options().resolved_batch_size(w) for w in (1, 2, 8)] == [128, 64, 64]
    assert [Options(batch_size=16).resolved_batch_size(w) for w in (1, 2)] == [16, 16]
    from convkit import pipeline

    sizes = []
    firsts = []
    original = pipeline._batches

    def batches(records, size, first=None):
        sizes.append(size)
        firsts.append(first)
        return original(records, size, first)

    monkeypatch.setattr(pipeline, "_batches", batches)
    src = write_json(tmp_path, [GOOD])
    st = tmp_path / "stats.json"
    recorded = []
    for kwargs in ({"workers": 1}, {"workers": 2}, {"workers": 2, "batch_size": 5}):
        convert(src, tmp_path / "out.jsonl", stats=st, **kwargs)
        recorded.append(json.loads(st.read_text())["options"]["batch_size"])
    assert sizes == recorded == [128, 64, 5]
    # One process converting HTML on a thread starts with a small batch, and the next ones
    # double up to the batch size (see pipeline._run).
    assert firsts == [32, None, None]
    assert [len(b) for b in original(range(70), 30, 8)] == [8, 16, 30, 16]
    assert [len(b) for b in original(range(100), 30, None)] == [30, 30, 30, 10]
    assert [len(b) for b in original(range(5), 30, 8)] == [5]
    assert [len(b) for b in original(range(9), 4, 8)] == [4, 4, 1]


def test_the_output_does_not_depend_on_the_workers_and_their_default_batches(tmp_path):
    # 150 records: three batches of 64 shared with a helper, of 32, 64 and 54 in one process
    # (converting HTML on a thread); the duplicates are found across batches.
    recs = [
        sg(f"c{i}", ("human", f"Question {i % 120}?"), ("gpt", PAGE.format(f"<p>Answer {i % 120}.</p>")))
        for i in range(150)
    ]
    src = write_json(tmp_path, recs)
    got = []
    for workers in (1, 2):
        out, rej, st = (tmp_path / f"{n}{workers}" for n in ("out", "rej", "st"))
        convert(src, out, rejects=rej, stats=st, workers=workers)
        stats = json.loads(st.read_text())
        assert stats["options"]["batch_size"] == (128 if workers == 1 else 64)
        del stats["seconds"], stats["options"], stats["workers"]
        got.append((out.read_bytes(), rej.read_bytes(), stats))
    assert got[0] == got[1]
    assert got[0][2]["conversations_out"] == 120
    assert got[0][2]["rejected_by_reason"] == {"duplicate_content": 30}


@pytest.mark.parametrize("dedup", [True, False])
def test_integers_beyond_64_bits_survive_a_conversion(tmp_path, dedup):
    # orjson refuses to write them; the writers fall back to the standard encoder.
    rec = sg("big", ("human", "A question here"), ("gpt", "An answer here"), n=2**70)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    disabled = frozenset() if dedup else frozenset({"duplicate_id", "duplicate_content"})
    out = tmp_path / "out.jsonl"
    convert(src, out, filters=FilterConfig(disabled=disabled))
    assert out.read_text(encoding="utf-8") == (
        '{"id":"big","conversations":[{"from":"human","value":"A question here"},'
        '{"from":"gpt","value":"An answer here"}],"n":1180591620717411303424}\n'
    )


DATED = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    "|{{ strftime_now('%d %b %Y') }}"
)


def test_a_templates_date_is_read_once_per_run_and_can_be_pinned(tmp_path, monkeypatch):
    tpl = tmp_path / "dated.jinja"
    tpl.write_text(DATED, encoding="utf-8")
    records = [
        sg(f"d{i}", ("human", f"Question {i} here"), ("gpt", f"Answer {i} here")) for i in range(40)
    ]
    src = write_json(tmp_path, records)
    blobs = []
    for workers in (1, 2):
        out, st = tmp_path / f"o{workers}.jsonl", tmp_path / f"s{workers}.json"
        convert(
            src,
            out,
            stats=st,
            output_format="text",
            writer_options={"template": str(tpl)},
            template_time="2024-07-26T09:30:00",
            workers=workers,
            batch_size=8,
        )
        blobs.append(out.read_bytes())
        assert json.loads(st.read_text())["options"]["template_time"] == "2024-07-26T09:30:00"
    assert blobs[0] == blobs[1]
    first = json.loads(blobs[0].splitlines()[0])
    assert first["text"] == "<user>Question 0 here<assistant>Answer 0 here|26 Jul 2024"
    assert first["convkit"]["template_time"] == "2024-07-26T09:30:00"

    # Unpinned: $SOURCE_DATE_EPOCH (UTC), as reproducible builds do; then the run's start.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out, st = tmp_path / "e.jsonl", tmp_path / "e.json"
    convert(src, out, stats=st, output_format="text", writer_options={"template": str(tpl)})
    assert json.loads(out.read_bytes().splitlines()[0])["text"].endswith("|14 Nov 2023")
    assert json.loads(st.read_text())["options"]["template_time"] == "2023-11-14T22:13:20"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    convert(src, out, stats=st, output_format="text", writer_options={"template": str(tpl)})
    when = json.loads(st.read_text())["options"]["template_time"]
    lines = out.read_bytes().splitlines()
    assert {json.loads(x)["convkit"]["template_time"] for x in lines} == {when}


def test_template_time_errors_are_worded(tmp_path, monkeypatch):
    src = write_json(tmp_path, [GOOD])
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", output_format="text", template_time="26/07/2024")
    assert str(e.value) == (
        "template_time must be an ISO 8601 date or time (2024-07-26, 2024-07-26T09:30:00), "
        "got '26/07/2024'"
    )
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ConfigError) as e:
        convert(src, tmp_path / "o.jsonl", output_format="text")
    assert str(e.value) == "SOURCE_DATE_EPOCH must be a number of seconds, got 'yesterday'"
    # No template in the run: the variable is not read, and no time is recorded.
    st = tmp_path / "s.json"
    convert(src, tmp_path / "o.jsonl", stats=st)
    assert json.loads(st.read_text())["options"]["template_time"] is None


def test_count_template_renders_with_the_runs_time(tmp_path):
    from convkit.process import Worker

    tpl = tmp_path / "dated.jinja"
    tpl.write_text(DATED, encoding="utf-8")
    opts = Options(
        tokenizer=TOKENIZER, max_tokens=64, count_template=str(tpl), template_time="2024-07-26"
    )
    worker = Worker(opts.validate())
    assert worker.budget is not None
    assert (
        worker.budget.template.render([{"role": "user", "content": "x"}]) == "<user>x|26 Jul 2024"
    )


def test_the_text_writers_alias_counts_through_its_template_too():
    from convkit.process import Worker

    for name in ("text", "transcript"):
        opts = Options(output_format=name, tokenizer=TOKENIZER, max_tokens=64)
        budget = Worker(opts.validate()).budget
        assert budget is not None and budget.template.name == "chatml"


def test_a_failed_run_leaves_no_directory_it_made(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n{broken\n")
    new = tmp_path / "new"
    with pytest.raises(InputError):
        convert(src, new / "a" / "out.jsonl", rejects=new / "rej.jsonl", stats=new / "s" / "st.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    # A folder that was there stays, and so does what a successful run made.
    (tmp_path / "old").mkdir()
    with pytest.raises(InputError):
        convert(src, tmp_path / "old" / "out.jsonl")
    assert list((tmp_path / "old").iterdir()) == []
    src.write_text(json.dumps(GOOD) + "\n")
    convert(src, new / "a" / "out.jsonl", stats=new / "s" / "st.json")
    assert sorted(str(p.relative_to(new)) for p in new.rglob("*")) == [
        "a", "a/out.jsonl", "s", "s/st.json"]


def test_a_run_that_cannot_write_its_stats_leaves_no_output(tmp_path):
    # The stats file is staged before the output and rejects are committed.
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the stats file's directory should be")
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    with pytest.raises(ConfigError) as e:
        convert(src, out, rejects=rej, stats=blocker / "stats.json")
    blocker = os.path.realpath(blocker)  # the message names the real path
    assert str(e.value) == f"cannot create output directory {blocker}: {blocker} is not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "in.jsonl"]
    with pytest.raises(ConfigError) as e:  # deeper: the file is an ancestor
        convert(src, out, rejects=rej, stats=tmp_path / "blocker" / "a" / "b" / "stats.json")
    assert str(e.value) == (
        f"cannot create output directory {blocker}/a/b: {blocker} is not a directory"
    )


def test_a_directory_the_file_system_refuses_is_an_output_error(tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(os, "makedirs", read_only)
    out = tmp_path / "sub" / "out.jsonl"
    with pytest.raises(OutputError) as e:
        convert(src, out)
    assert str(e.value) == (
        f"cannot write {out}: cannot create its directory {os.path.realpath(tmp_path)}/sub: "
        "Read-only file system"
    )
    assert e.value.errno == errno.EROFS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize("where", ["os.open", "os.fdopen"])
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_an_interrupt_as_a_file_is_created_leaves_no_file(tmp_path, monkeypatch, where, nth):
    # Ctrl-C or SIGTERM raises between any two statements: here right after the output's (1),
    # the rejects' (2) or the stats' (3) temporary file is created, before its writer holds it.
    # Named temporary files (where O_TMPFILE is not there to leave them nameless).
    import os

    from convkit import io as cio

    monkeypatch.setattr(cio, "_anonymous_file", lambda directory: None)

    name = where.split(".")[1]
    real = getattr(os, name)
    calls = []

    def interrupted(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(name)
        if len(calls) == nth:
            # The descriptor is dropped; the file stays on disk, unknown to its writer.
            result.close() if name == "fdopen" else os.close(result)
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(cio.os, name, interrupted)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    out_dir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        convert(src, out_dir / "o.jsonl", rejects=out_dir / "r.jsonl", stats=out_dir / "s.json")
    assert len(calls) == nth
    assert list(out_dir.iterdir()) == []
    assert cio._TEMPORARIES == {}


def test_an_output_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(tmp_path):
    import os

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "o.jsonl"
    target.write_text("old\n")
    link = tmp_path / "o.jsonl"
    link.symlink_to(target)
    convert(src, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [json.loads(x)["id"] for x in target.read_text().splitlines()] == ["a"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["o.jsonl"]


def test_a_fifo_output_is_written_in_place(tmp_path):
    import os
    import threading

    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    convert(src, fifo)
    reader.join(timeout=30)
    assert [json.loads(x)["id"] for x in got[0].splitlines()] == ["a"]
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "pipe"]


@pytest.mark.parametrize("role", ["output", "rejects", "stats"])
def test_a_name_ending_in_a_slash_is_a_directory_even_when_missing(tmp_path, role):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    paths = {"output": str(tmp_path / "o.jsonl"), "rejects": None, "stats": None}
    paths[role] = f"{tmp_path}/new/"
    with pytest.raises(ConfigError) as e:
        convert(src, paths["output"], rejects=paths["rejects"], stats=paths["stats"])
    assert str(e.value) == f"{role} is a directory, not a file: {tmp_path}/new/"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize("role", ["output", "rejects", "stats"])
def test_a_directory_given_as_an_output_is_refused_before_anything_is_written(tmp_path, role):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "d").mkdir()
    paths = {"output": tmp_path / "o.jsonl", "rejects": tmp_path / "r.jsonl",
             "stats": tmp_path / "s.json"}
    paths[role] = tmp_path / "d"
    with pytest.raises(ConfigError) as e:
        convert(src, paths["output"], rejects=paths["rejects"], stats=paths["stats"])
    assert str(e.value) == f"{role} is a directory, not a file: {tmp_path / 'd'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "in.jsonl"]
    assert list((tmp_path / "d").iterdir()) == []


def test_a_conversation_rejected_by_the_splitter_is_one_reject_line(tmp_path):
    # Its trailing user turn was trimmed by a filter; then no exchange fits: the conversation
    # goes to the rejects once, whole, and the trim's line and count are taken back.
    long = "word " * 400
    rec = sg("x", ("human", "A question long enough?"), ("gpt", long), ("human", "And?"))
    out, rej, stats, _ = run(tmp_path, [rec], tokenizer=TOKENIZER, max_tokens=50)
    assert out == []
    assert [(r["reason"], r["scope"]) for r in rej] == [("oversize_exchange", "conversation")]
    assert stats["parts_rejected_by_reason"] == {} and stats["accounted"] is True


def test_rejected_turns_keep_their_other_keys(tmp_path):
    # A trailing tool result is trimmed: its line carries tool_call_id, so the exchange can be
    # rebuilt from the rejects.
    rec = {"id": "t", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "It is sunny in Paris today."},
        {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "18 C"},
    ]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    rej = tmp_path / "rej.jsonl"
    convert(src, tmp_path / "o.jsonl", rejects=rej, input_format="messages")
    (line,) = lines(rej)
    assert (line["reason"], line["scope"]) == ("trailing_tool_turn", "turns")
    assert line["turns"] == [
        {"role": "tool", "content": "18 C", "tool_call_id": "c1", "name": "weather"}
    ]


def test_tool_call_arguments_are_counted(tmp_path):
    # The arguments are trained on: a call of 500 words does not fit 100 tokens.
    args = json.dumps({"text": "word " * 500})
    rec = {"id": "t", "messages": [
        {"role": "user", "content": "Summarise this text please."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "summarise", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "A summary."},
        {"role": "assistant", "content": "Here it is: a summary."},
    ]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out, rej, st = tmp_path / "o.jsonl", tmp_path / "r.jsonl", tmp_path / "s.json"
    convert(src, out, rejects=rej, stats=st, input_format="messages", tokenizer=TOKENIZER,
            max_tokens=100)
    assert out.read_text() == ""
    assert [r["reason"] for r in lines(rej)] == ["oversize_exchange"]
    convert(src, out, rejects=rej, stats=st, input_format="messages", tokenizer=TOKENIZER,
            max_tokens=5000)
    stats = json.loads(st.read_text())
    assert stats["segments"] == 1 and stats["tokens"] > 500


def test_a_builtin_template_rejects_tool_calls_with_its_reason(tmp_path):
    rec = {"id": "t", "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C"},
        {"role": "assistant", "content": "It is 18 C."},
    ]}
    plain = {"id": "p", "messages": [
        {"role": "user", "content": "What is the capital of Norway?"},
        {"role": "assistant", "content": "The capital of Norway is Oslo."}]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n" + json.dumps(plain) + "\n")
    out, rej = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    convert(src, out, rejects=rej, input_format="messages", output_format="text",
            writer_options={"template": "chatml"})
    assert [r["id"] for r in lines(out)] == ["p"]
    (line,) = lines(rej)
    assert (line["id"], line["reason"], line["scope"]) == ("t", "template_error", "conversation")
    assert line["detail"] == (
        "chat template 'chatml': chatml has no way to write tool calls; use the chat template "
        "of a model trained for tools (its tokenizer_config.json)"
    )


def test_segment_ids_have_no_gap_where_the_writer_refuses_one(tmp_path):
    # Llama 2's template refuses two user turns in a row: the middle segment is rejected, and
    # the segments written are still numbered 0, 1.
    words = " ".join(f"w{i}" for i in range(20))
    msgs = [("user", f"first {words}"), ("assistant", f"one {words}"),
            ("user", f"second {words}"), ("user", f"again {words}"), ("assistant", f"two {words}"),
            ("user", f"third {words}"), ("assistant", f"three {words}")]
    rec = {"id": "c", "messages": [{"role": r, "content": c} for r, c in msgs]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    out, rej = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    convert(src, out, rejects=rej, input_format="messages", output_format="text",
            writer_options={"template": "llama-2"}, tokenizer=TOKENIZER, max_tokens=250,
            filters={"disabled": ["roles_not_alternating"]})
    written = lines(out)
    assert [r["id"] for r in written] == ["c_0", "c_1"]
    assert "third" in written[1]["text"]
    assert [(r["reason"], r["scope"]) for r in lines(rej)] == [("template_error", "turns")]


@pytest.mark.parametrize("policy", ["drop", "keep"])
def test_a_request_to_go_on_without_room_for_its_context(tmp_path, policy):
    long = "word " * 30  # 60 tokens of the example tokenizer: two exchanges do not fit 100
    rec = sg("x", ("human", "Tell me a long story please?"), ("gpt", long),
             ("human", "Continue please."), ("gpt", long))
    out, rej, stats, _ = run(tmp_path, [rec], tokenizer=TOKENIZER, max_tokens=100,
                             continuations=policy)
    assert stats["options"]["continuations"] == policy
    if policy == "drop":
        assert [s["id"] for s in out] == ["x_0"]
        assert [(r["reason"], r["scope"], r["detail"]) for r in rej] == [
            ("no_context", "turns", "69 tokens")
        ]
        assert rej[0]["turns"] == [{"role": "user", "content": "Continue please."},
                                   {"role": "assistant", "content": long}]
    else:
        assert [s["id"] for s in out] == ["x_0", "x_1"] and rej == []
        assert out[1]["conversations"][0]["value"] == "Continue please."


def test_integer_and_string_ids_are_one_id(tmp_path):
    # Written as it was read (an integer stays one), but compared as the string every segment
    # id and parquet row has: 1 and "1" would give two "1_0" segments.
    one = sg(1, ("human", "A question long enough?"), ("gpt", "An answer."))
    other = sg("1", ("human", "Another question, long enough?"), ("gpt", "Another answer."))
    out, rej, _, _ = run(tmp_path, [one, other])
    assert [o["id"] for o in out] == [1]
    assert [(r["reason"], r["index"]) for r in rej] == [("duplicate_id", 1)]


def test_tool_calls_nested_deeper_than_the_recursion_limit_are_counted():
    from convkit.model import Turn
    from convkit.process import counted_text

    deep: list = []
    for _ in range(1500):
        deep = [deep]
    text = counted_text(Turn("assistant", "Calling.", {"tool_calls": deep}))
    assert text == "Calling.\n" + "[" * 1501 + "]" * 1501  # 1,500 lists around an empty one


@pytest.mark.parametrize("workers", [1, 2])
def test_a_lone_surrogate_is_rejected_when_tokens_are_counted(tmp_path, workers):
    # The tokenizers library cannot take one (it raised a TypeError that ended the run): the
    # conversation is rejected whole, the lines of the parts already trimmed from it withdrawn.
    recs = [
        sg("s", ("gpt", "A greeting."), ("human", "Hi \ud800 there, how are you?"), ("gpt", "Fine.")),
        GOOD,
        sg("t", ("human", "Tell me a joke please."), ("gpt", "Why did the \udfff cross the road?")),
    ]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(recs))  # "\ud800" escapes
    out, rej, st = tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "stats.json"
    convert(src, out, rejects=rej, stats=st, tokenizer=TOKENIZER, max_tokens=200, workers=workers)
    assert [r["id"] for r in lines(out)] == ["a_0"]
    detail = (
        "a turn of role {} holds a lone surrogate (read from a JSON \\ud800 escape), which the "
        "tokenizer cannot encode"
    )
    assert [(r["id"], r["reason"], r["detail"], r["scope"], r["record"]) for r in lines(rej)] == [
        ("s", "untokenizable_text", detail.format("user"), "conversation", recs[0]),
        ("t", "untokenizable_text", detail.format("assistant"), "conversation", recs[2]),
    ]
    stats = json.loads(st.read_text())
    assert stats["rejected_by_reason"] == {"untokenizable_text": 2}
    assert stats["parts_rejected_by_reason"] == {}
    assert stats["accounted"] is True


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", ["count_template", "text"])
def test_a_lone_surrogate_that_only_the_template_renders_is_rejected(tmp_path, workers, how):
    # The turns' text is clean; the tool's name, which the template renders, is not.
    template = tmp_path / "tools.jinja"
    template.write_text(
        "{{ tools | tojson }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    )
    msgs = [{"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": "Sunny all day."}]
    recs = [
        {"id": "bad", "messages": msgs, "tools": [{"function": {"name": "f\ud800"}}]},
        {"id": "good", "messages": msgs, "tools": [{"function": {"name": "f"}}]},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out, rej, st = tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "stats.json"
    options = (
        {"count_template": str(template)}
        if how == "count_template"
        else {"output_format": "text", "writer_options": {"template": str(template)}}
    )
    convert(src, out, rejects=rej, stats=st, input_format="messages", tokenizer=TOKENIZER,
            max_tokens=200, workers=workers, **options)
    assert len(lines(out)) == 1
    assert [(r["id"], r["reason"], r["detail"]) for r in lines(rej)] == [
        ("bad", "untokenizable_text", "a field the chat template renders holds a lone surrogate "
         "(read from a JSON \\ud800 escape), which the tokenizer cannot encode"),
    ]
    stats = json.loads(st.read_text())
    assert stats["accounted"] is True and stats["rejected_by_reason"] == {"untokenizable_text": 1}


def _many(n):
    return [
        sg(f"c{i}", ("human", f"Question number {i} about planets?"), ("gpt", f"Answer {i}. " * 4))
        for i in range(n)
    ]


def test_a_failed_split_run_ends_its_counting_thread_at_once(tmp_path, monkeypatch):
    import threading

    from convkit import split

    real = split.split_conversation

    def failing(conv, *args, **kwargs):
        if conv.id == "c5":
            raise RuntimeError("split failed")
        return real(conv, *args, **kwargs)

    monkeypatch.setattr(split, "split_conversation", failing)
    src = write_json(tmp_path, _many(40))
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="^split failed$") as caught:
        convert(src, tmp_path / "out.jsonl", tokenizer=TOKENIZER, max_tokens=120, workers=1,
                batch_size=2)
    # The error is still held (its traceback holds the generators): the thread ended anyway.
    assert caught.value is not None
    assert [t.name for t in set(threading.enumerate()) - before] == []
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("workers, split_kw", [(1, {"tokenizer": TOKENIZER, "max_tokens": 120}),
                                               (2, {})])
def test_a_failed_write_ends_the_counting_thread_and_the_helpers_at_once(
    tmp_path, monkeypatch, workers, split_kw
):
    import multiprocessing
    import threading

    from convkit import io

    def full(self, lines):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.RecordWriter, "write_many", full)
    src = write_json(tmp_path, [*_many(40), sg("bad", ("gpt", "no question"))])
    threads, children = set(threading.enumerate()), set(multiprocessing.active_children())
    with pytest.raises(OSError, match="No space left on device") as caught:
        convert(src, tmp_path / "out.jsonl", rejects=tmp_path / "rej.jsonl", workers=workers,
                batch_size=2, **split_kw)
    assert caught.value is not None
    assert [t.name for t in set(threading.enumerate()) - threads] == []
    assert set(multiprocessing.active_children()) - children == set()
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "rej.jsonl").exists()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("max_tokens", [None, 64])
def test_without_a_rejects_file_no_reject_line_is_made_and_the_counts_stay(
    tmp_path, monkeypatch, workers, max_tokens
):
    # Every kind of reject: a dropped leading turn (a part), a conversation a filter rejects,
    # a duplicate (found in the main process) and a malformed record.
    recs = [
        sg(
            "p",
            ("gpt", "Hello there, how can I help?"),
            ("human", "What is bold?"),
            ("gpt", PAGE.format("<p>Bold is <b>thick</b>.</p>")),
        ),
        GOOD,
        sg("short", ("human", "hi")),
        dict(GOOD, id="again"),
    ]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(recs)[:-1] + ', {"id": tru}]', encoding="utf-8")
    kw = {"workers": workers, "on_error": "skip"}
    if max_tokens is not None:
        kw.update(tokenizer=TOKENIZER, max_tokens=max_tokens)
    kept = tmp_path / "with"
    convert(src, kept / "out.jsonl", rejects=kept / "rej.jsonl", stats=kept / "s.json", **kw)
    assert [(r["reason"], r["scope"]) for r in lines(kept / "rej.jsonl")] == [
        ("leading_non_user", "turns"),
        ("too_few_turns", "conversation"),
        ("duplicate_content", "conversation"),
        ("malformed_json", "record"),
    ]

    from convkit import pipeline, process

    def no_line(*args, **kwargs):
        raise AssertionError("a reject line was made for a run without a rejects file")

    monkeypatch.setattr(process, "reject_line", no_line)
    monkeypatch.setattr(pipeline, "reject_line", no_line)
    counted = tmp_path / "without"
    convert(src, counted / "out.jsonl", stats=counted / "s.json", **kw)
    assert (counted / "out.jsonl").read_bytes() == (kept / "out.jsonl").read_bytes()
    stats = [json.loads((d / "s.json").read_text()) for d in (kept, counted)]
    for s in stats:
        del s["seconds"]
    assert stats[0] == stats[1]
    assert stats[0]["rejected_by_reason"] == {
        "too_few_turns": 1, "duplicate_content": 1, "malformed_json": 1
    }
    assert stats[0]["parts_rejected_by_reason"] == {"leading_non_user": 1}
