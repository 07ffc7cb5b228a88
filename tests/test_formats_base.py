"""The format registry: options, describe, detection with reasons, the stream protocol, auto."""

from __future__ import annotations

import pytest

from convkit.errors import ConfigError, InputError
from convkit.formats import (
    Detection,
    Format,
    Option,
    RecordRejected,
    Rejection,
    default_output_format,
    describe,
    detect_format,
    detect_name,
    detect_record,
    detect_records,
    detection_order,
    format_names,
    get_format,
)
from convkit.io import BadRecord, RawRecord
from convkit.model import Conversation, Source


def raw(*values, file="t.jsonl"):
    return [RawRecord(file, i, i + 1, v) for i, v in enumerate(values)]


def stream(fmt, *values, file="t.jsonl"):
    return list(fmt.read_stream(raw(*values, file=file)))


# --------------------------------------------------------------------------- registry and options


def test_readers_and_writers_are_registered():
    assert format_names(readable=True) == [
        "alpaca",
        "baize",
        "dolly",
        "flan",
        "lima",
        "messages",
        "natural-instructions",
        "oasst",
        "sharegpt",
        "super-ni",
        "text",
        "unnatural",
    ]
    assert format_names(writable=True) == ["alpaca", "messages", "parquet", "sharegpt", "text"]


@pytest.mark.parametrize(
    "alias,name",
    [
        ("vicuna", "sharegpt"),
        ("openai", "messages"),
        ("oasst1", "oasst"),
        ("p3", "flan"),
        ("t0", "flan"),
        ("sni", "super-ni"),
        ("code-alpaca", "alpaca"),
        ("evol-instruct", "alpaca"),
        ("transcript", "text"),
        ("natural-instructions-v1", "natural-instructions"),
    ],
)
def test_aliases(alias, name):
    assert get_format(alias).name == name


def test_get_format_without_options_still_works():
    assert get_format("sharegpt").name == "sharegpt"
    assert get_format("alpaca").opt == {"prompt_template": "default", "history": False}


def test_unknown_format():
    with pytest.raises(ConfigError, match="^unknown format 'nope'; known formats: alpaca, baize"):
        get_format("nope")


def test_unknown_option():
    with pytest.raises(ConfigError) as e:
        get_format("oasst", bset=True)
    assert str(e.value) == "unknown option 'bset' for format 'oasst'; its options: best, row_order"


def test_format_without_options():
    with pytest.raises(ConfigError) as e:
        get_format("sharegpt", best=True)
    assert str(e.value) == "format 'sharegpt' takes no options; got 'best'"


def test_option_type_is_checked():
    with pytest.raises(ConfigError) as e:
        get_format("super-ni", fewshot="2")
    assert str(e.value) == "option 'fewshot' of format 'super-ni' must be an integer, got string"


def test_option_bool_is_not_an_integer():
    with pytest.raises(ConfigError, match="must be"):
        get_format("super-ni", fewshot=True)


def test_option_minimum_and_choices():
    with pytest.raises(ConfigError) as e:
        get_format("super-ni", fewshot=-1)
    assert str(e.value) == "option 'fewshot' of format 'super-ni' must be at least 0, got -1"
    with pytest.raises(ConfigError) as e:
        get_format("alpaca", prompt_template="vicuna")
    assert str(e.value) == (
        "option 'prompt_template' of format 'alpaca' must be one of "
        "default, fastchat, llama-factory, stanford; got 'vicuna'"
    )


@pytest.mark.parametrize("text,value", [("true", True), ("No", False), ("1", True), ("off", False)])
def test_option_parse_bool(text, value):
    assert Option("x", bool, False, "").parse(text) is value


def test_option_parse_errors():
    with pytest.raises(ConfigError, match="^option 'k' takes an integer, got 'two'$"):
        Option("k", int, 0, "").parse("two")
    with pytest.raises(ConfigError, match="^option 'b' takes true or false, got 'maybe'$"):
        Option("b", bool, False, "").parse("maybe")
    assert Option("k", int, 0, "").parse("3") == 3


def test_describe_lists_every_format_with_what_it_recognises_and_its_options():
    rows = {r.name: r for r in describe()}
    assert set(rows) == set(format_names())
    assert rows["oasst"].reads and not rows["oasst"].writes
    assert rows["parquet"].writes and not rows["parquet"].reads and rows["parquet"].recognises == ""
    assert rows["alpaca"].recognises == 'string "instruction" and "output"'
    assert rows["sharegpt"].recognises  # falls back to the description
    assert [o.name for o in rows["super-ni"].options] == ["fewshot", "seed"]
    assert {o.side for o in rows["text"].options} == {"read", "write"}


def test_default_output_format():
    assert default_output_format("sharegpt") == "sharegpt"
    assert default_output_format("vicuna") == "sharegpt"
    assert default_output_format("alpaca") == "messages"
    assert default_output_format("auto") == "messages"


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "record,name",
    [
        ({"id": "a", "conversations": [{"from": "human", "value": "hi"}]}, "sharegpt"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages"),
        ({"conversations": [{"role": "user", "content": "hi"}]}, "messages"),
        # What the ShareGPT writer writes for a "developer" message: a ShareGPT turn still.
        (
            {"conversations": [{"from": "system", "value": "Be terse.", "role": "developer"}]},
            "sharegpt",
        ),
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
        ({"instruction": "i", "output": "o"}, "alpaca"),
        ({"instruction": "i", "context": "", "response": "r", "category": "qa"}, "dolly"),
        ({"conversations": ["q", "a"], "source": "stackexchange"}, "lima"),
        ({"topic": "t", "input": "x\n[|Human|] hi\n[|AI|] yo\n[|Human|] "}, "baize"),
        ({"Definition": ["d"], "Positive Examples": [], "Instances": []}, "super-ni"),
        ({"Definition": "d", "Examples": {}, "Instances": []}, "natural-instructions"),
        ({"instruction": "i", "instances": [{"input": "", "output": "o"}]}, "unnatural"),
        ({"inputs": "q", "targets": "a", "task": "t"}, "flan"),
        ({"inputs": [1, 2], "inputs_pretokenized": "q", "targets_pretokenized": "a"}, "flan"),
        ({"message_tree_id": "t", "prompt": {"message_id": "m", "replies": []}}, "oasst"),
        (
            {"message_id": "m", "parent_id": None, "role": "prompter", "text": "q", "replies": []},
            "oasst",
        ),
        ({"message_id": "m", "parent_id": None, "role": "prompter", "text": "q"}, "oasst"),
        ({"text": "<|im_start|>user\nhi<|im_end|>\n"}, "text"),
        ({"text": "### Human: hi ### Assistant: yo"}, "text"),
    ],
)
def test_detect_record_picks_the_reader(record, name):
    d = detect_record(record)
    assert d.name == name
    assert detect_name(record) == name
    assert detect_format(record).name == name
    assert d.why


def test_detect_record_explains_in_words():
    d = detect_record({"instruction": "i", "input": "", "output": "o"})
    assert d == Detection("alpaca", 'string "instruction" and "output"', ())
    d = detect_record({"text": "<|im_start|>user\nhi<|im_end|>"})
    assert d.why == '"text" rendered as chatml'


def test_detect_record_names_the_other_candidates():
    # An Alpaca record that also has a rendered "text" (as tatsu-lab/alpaca does).
    d = detect_record(
        {"instruction": "i", "input": "", "output": "o", "text": "### Human: i ### Assistant: o"}
    )
    assert d.name == "alpaca"
    assert d.also == ("text",)


@pytest.mark.parametrize(
    "record,why",
    [
        (
            {"instruction": "x", "input": "", "output": None},
            'no reader recognises an object with keys "instruction", "input", "output"; as '
            'alpaca: expected "output" to be a string, got null',
        ),
        (
            {"messages": "hi"},
            'no reader recognises an object with keys "messages"; as messages: expected '
            '"messages" to be a list, got string',
        ),
        (
            {"inputs": "q", "targets": 3},
            'no reader recognises an object with keys "inputs", "targets"; as flan: expected '
            '"targets" to be a string, got number',
        ),
        (
            # ShareGPT with a "source" field (OpenHermes): worded as ShareGPT, not as LIMA.
            {"conversations": [{"value": "hi"}, {"from": "gpt", "value": "yo"}], "source": "x"},
            'no reader recognises an object with keys "conversations", "source"; as sharegpt: '
            "missing conversations[0].from",
        ),
        # A plain "text" field says nothing about a format: no reader is asked to word it.
        ({"text": "Once upon a time."}, 'no reader recognises an object with keys "text"'),
    ],
)
def test_a_record_with_a_formats_keys_but_a_wrong_field_is_worded_by_that_reader(record, why):
    assert detect_record(record) == Detection(None, why, ())
    (rejection,) = get_format("auto").read_stream(raw(record))
    assert (rejection.reason, rejection.message) == ("unknown_format", why)


def test_detect_record_nothing():
    d = detect_record({"question": "q", "answer": "a"})
    assert d == Detection(None, 'no reader recognises an object with keys "question", "answer"', ())
    assert detect_record([1, 2]).why == "no reader recognises a JSON array"
    assert detect_format({"question": "q"}) is None


def test_detection_order_puts_specific_shapes_first():
    order = detection_order()
    assert order.index("unnatural") < order.index("alpaca")
    assert order.index("dolly") < order.index("alpaca")
    assert order.index("text") > order.index("alpaca")


def test_detect_records_yields_each_record_with_its_detection():
    bad = BadRecord("f", 1, 2, InputError("malformed JSON"), "{")
    recs = [*raw({"messages": []}), bad]
    out = list(detect_records(recs))
    assert out[0][1].name == "messages"
    assert out[1] == (bad, None)


# --------------------------------------------------------------------------- the stream protocol


class _Pairs(Format):
    """A test format: each record is [user, assistant]; a wrong record is rejected."""

    name = "pairs-test"

    def read(self, record, source):
        if not isinstance(record, list):
            raise RecordRejected("invalid_record", "expected a list", None)
        from convkit.model import Turn

        yield Conversation(
            str(source.index), [Turn("user", record[0]), Turn("assistant", record[1])]
        )


def test_default_read_stream_turns_rejections_into_items_and_passes_bad_records_through():
    bad = BadRecord("t.jsonl", 1, 2, InputError("malformed JSON"), "{")
    recs = [RawRecord("t.jsonl", 0, 1, ["q", "a"]), bad, RawRecord("t.jsonl", 2, 3, {"x": 1})]
    out = list(_Pairs().read_stream(recs))
    assert isinstance(out[0], Conversation)
    assert out[1] is bad
    assert out[2] == Rejection(
        "invalid_record", "expected a list", Source("t.jsonl", 2, 3), None, None, {"x": 1}
    )
    assert out[2].where() == "t.jsonl line 3"


class _Nothing(Format):
    """A test format whose records make no conversation."""

    name = "nothing-test"

    def read(self, record, source):
        return iter(())


def test_a_record_that_makes_no_conversation_is_rejected_not_lost():
    out = list(_Nothing().read_stream([RawRecord("t.jsonl", 0, 1, {"x": 1})]))
    assert out == [
        Rejection(
            "no_conversation",
            "the record holds no conversation",
            Source("t.jsonl", 0, 1),
            None,
            None,
            {"x": 1},
        )
    ]


def test_can_read_and_write():
    assert _Pairs.can_read() and not _Pairs.can_write()
    assert get_format("oasst").can_read()


# --------------------------------------------------------------------------- auto


def test_auto_reads_mixed_records_each_with_its_reader():
    out = stream(
        get_format("auto"),
        {"instruction": "i", "input": "", "output": "o"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"question": "q"},
        {"conversations": ["q", "a"], "source": "s"},
    )
    assert [type(x).__name__ for x in out] == [
        "Conversation",
        "Conversation",
        "Rejection",
        "Conversation",
    ]
    assert out[0].meta["convkit"]["reader"] == "alpaca"
    assert out[2].reason == "unknown_format"
    assert out[2].message == 'no reader recognises an object with keys "question"'
    assert out[3].meta["convkit"]["reader"] == "lima"


def test_auto_hands_options_to_the_readers_that_declare_them():
    auto = get_format("auto", prompt_template="fastchat")
    out = stream(
        auto,
        {"instruction": "i", "input": "in", "output": "o"},
        {"instruction": "i", "context": "ctx", "response": "r"},
    )
    assert out[0].turns[0].content == "i\nInput:\nin"
    assert out[1].turns[0].content == "i\nInput:\nctx"


def test_auto_rejects_options_no_reader_declares():
    with pytest.raises(ConfigError, match="^unknown option 'template': no reader declares it$"):
        get_format("auto", template="chatml")


def test_auto_checks_option_values_at_once():
    with pytest.raises(ConfigError, match="must be at least 0"):
        get_format("auto", fewshot=-2)


def test_auto_feeds_flat_oasst_rows_to_one_stateful_run():
    rows = [
        {
            "message_id": "p",
            "parent_id": None,
            "role": "prompter",
            "text": "q",
            "message_tree_id": "t",
        },
        {
            "message_id": "a1",
            "parent_id": "p",
            "role": "assistant",
            "text": "x",
            "message_tree_id": "t",
        },
        {
            "message_id": "a2",
            "parent_id": "p",
            "role": "assistant",
            "text": "y",
            "message_tree_id": "t",
        },
    ]
    bad = BadRecord("t.jsonl", 1, 2, InputError("malformed JSON"), "{")
    recs = raw(*rows)
    recs.insert(1, bad)  # an undecodable line inside the tree does not cut it in two
    out = list(get_format("auto").read_stream(recs))
    assert out[0] is bad
    assert [c.id for c in out[1:]] == ["t/a1", "t/a2"]
    # Nor does a row no reader recognises (an id of the wrong type): the OASST reader rejects
    # it alone, as with --from oasst.
    broken = {**rows[1], "message_id": 17}
    recs = raw(rows[0], broken, rows[2])
    for fmt in ("auto", "oasst"):
        out = list(get_format(fmt).read_stream(recs))
        assert [type(x).__name__ for x in out] == ["Rejection", "Conversation"], fmt
        assert (out[0].reason, out[0].source.index, out[1].id) == ("invalid_record", 1, "t/a2")


def test_auto_read_single_record():
    auto = get_format("auto")
    (conv,) = auto.read({"inputs": "q", "targets": "a"}, Source("f", 0))
    assert conv.meta["convkit"]["reader"] == "flan"
    with pytest.raises(RecordRejected) as e:
        list(auto.read(5, Source("f", 0)))
    assert e.value.reason == "unknown_format"
    assert auto.recognise({"inputs": "q", "targets": "a"}).startswith("flan: ")
    assert not auto.can_write()
