"""Alpaca and Dolly readers (prompt templates, metadata, rejections) and the Alpaca writer."""

from __future__ import annotations

import json

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.model import Conversation, Source, Turn

SRC = Source("data.json", 3)


def read(fmt, record):
    return list((get_format(fmt) if isinstance(fmt, str) else fmt).read(record, SRC))


def user(fmt, record):
    (conv,) = read(fmt, record)
    return conv.turns[-2].content


def reason(fmt, record):
    with pytest.raises(RecordRejected) as e:
        read(fmt, record)
    return e.value.reason, e.value.message


# --------------------------------------------------------------------------- reader


def test_alpaca_without_input():
    (conv,) = read("alpaca", {"instruction": "Name a colour.", "input": "", "output": "Red."})
    assert [(t.role, t.content) for t in conv.turns] == [
        ("user", "Name a colour."),
        ("assistant", "Red."),
    ]
    assert conv.id == "data.json#3"
    assert conv.meta == {"convkit": {"reader": "alpaca", "prompt_template": "default"}}
    assert conv.source == SRC


def test_alpaca_input_is_appended_after_a_blank_line():
    assert user("alpaca", {"instruction": "Sum.", "input": "1 2", "output": "3"}) == "Sum.\n\n1 2"


def test_alpaca_blank_input_is_ignored():
    assert user("alpaca", {"instruction": "Sum.", "input": "  \n", "output": "3"}) == "Sum."


def test_alpaca_missing_or_null_input():
    assert user("alpaca", {"instruction": "Sum.", "output": "3"}) == "Sum."  # evol-instruct 70k
    assert user("alpaca", {"instruction": "Sum.", "input": None, "output": "3"}) == "Sum."


def test_alpaca_empty_instruction_uses_the_input():
    assert (
        user("alpaca", {"instruction": "", "input": "Translate: chat", "output": "cat"})
        == "Translate: chat"
    )


@pytest.mark.parametrize(
    "template,inp,expected",
    [
        ("default", "1 2", "Sum.\n\n1 2"),
        ("fastchat", "1 2", "Sum.\nInput:\n1 2"),
        ("fastchat", "7", "Sum."),  # FastChat's "> 1" test drops a one-character input
        ("llama-factory", "1 2", "Sum.\n1 2"),
        ("llama-factory", "", "Sum."),
        (
            "stanford",
            "1 2",
            "Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\nSum.\n\n### Input:\n1 2\n\n### Response:",
        ),
        (
            "stanford",
            "",
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction:\nSum.\n\n### Response:",
        ),
    ],
)
def test_alpaca_prompt_templates(template, inp, expected):
    fmt = get_format("alpaca", prompt_template=template)
    (conv,) = read(fmt, {"instruction": "Sum.", "input": inp, "output": "3"})
    assert conv.turns[0].content == expected
    assert conv.meta["convkit"] == {"reader": "alpaca", "prompt_template": template}


def test_alpaca_other_fields_go_to_meta_and_id_is_used():
    (conv,) = read(
        "alpaca", {"id": 17, "instruction": "i", "output": "o", "source": "self-instruct"}
    )
    assert conv.id == "17"
    assert conv.meta["source"] == "self-instruct"


def test_alpaca_llama_factory_system_and_history():
    (conv,) = read(
        "alpaca",
        {
            "instruction": "And now?",
            "input": "",
            "output": "Done.",
            "system": "Be brief.",
            "history": [["First?", "One."], ["Second?", "Two."]],
        },
    )
    assert [(t.role, t.content) for t in conv.turns] == [
        ("system", "Be brief."),
        ("user", "First?"),
        ("assistant", "One."),
        ("user", "Second?"),
        ("assistant", "Two."),
        ("user", "And now?"),
        ("assistant", "Done."),
    ]


@pytest.mark.parametrize(
    "record,expected",
    [
        (
            {"instruction": ["a"], "output": "o"},
            ("invalid_record", 'expected "instruction" to be a string, got array'),
        ),
        (
            {"instruction": "i", "output": 3},
            ("invalid_record", 'expected "output" to be a string, got number'),
        ),
        ({"instruction": "i"}, ("invalid_record", 'missing "output"')),
        (
            {"instruction": "i", "input": {}, "output": "o"},
            ("invalid_record", 'expected "input" to be a string, got object'),
        ),
        (
            {"instruction": "i", "output": "o", "system": 1},
            ("invalid_record", 'expected "system" to be a string, got number'),
        ),
        (
            {"instruction": "i", "output": "o", "history": "x"},
            ("invalid_record", 'expected "history" to be a list, got string'),
        ),
        (
            {"instruction": "i", "output": "o", "history": [["q"]]},
            ("invalid_record", "expected history[0] to be a [prompt, response] pair of strings"),
        ),
        ([1, 2], ("invalid_record", "expected a JSON object, got array")),
        (
            {"id": [], "instruction": "i", "output": "o"},
            ("invalid_record", 'expected "id" to be a string or an integer, got array'),
        ),
    ],
)
def test_alpaca_rejections(record, expected):
    assert reason("alpaca", record) == expected


def test_dolly_context_is_the_input_and_category_is_kept():
    (conv,) = read(
        "dolly",
        {
            "instruction": "When?",
            "context": "In 2000.",
            "response": "2000",
            "category": "closed_qa",
        },
    )
    assert [(t.role, t.content) for t in conv.turns] == [
        ("user", "When?\n\nIn 2000."),
        ("assistant", "2000"),
    ]
    assert conv.meta == {
        "category": "closed_qa",
        "convkit": {"reader": "dolly", "prompt_template": "default"},
    }


def test_dolly_prompt_template_and_rejection():
    fmt = get_format("dolly", prompt_template="stanford")
    (conv,) = read(
        fmt, {"instruction": "When?", "context": "", "response": "2000", "category": "open_qa"}
    )
    assert conv.turns[0].content.endswith("### Instruction:\nWhen?\n\n### Response:")
    assert reason("dolly", {"instruction": "When?", "context": "", "category": "x"}) == (
        "invalid_record",
        'missing "response"',
    )
    assert reason("dolly", {"instruction": "When?", "context": 5, "response": "r"}) == (
        "invalid_record",
        'expected "context" to be a string, got number',
    )


def test_dolly_is_read_only():
    assert not get_format("dolly").can_write()


# --------------------------------------------------------------------------- writer


def conv(*turns, meta=None):
    return Conversation("c1", [Turn(r, c) for r, c in turns], meta or {})


def test_alpaca_writer_single_exchange():
    out = get_format("alpaca").write(
        conv(("user", "q"), ("assistant", "a"), meta={"category": "x"})
    )
    assert out == {"id": "c1", "instruction": "q", "input": "", "output": "a", "category": "x"}


def test_alpaca_writer_keeps_the_system_prompt():
    out = get_format("alpaca").write(conv(("system", "s"), ("user", "q"), ("assistant", "a")))
    assert out == {"id": "c1", "system": "s", "instruction": "q", "input": "", "output": "a"}


@pytest.mark.parametrize(
    "turns,roles",
    [
        (
            (("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "a2")),
            "user, assistant, user, assistant",
        ),
        ((("user", "q"),), "user"),
        ((("user", "q"), ("assistant", "a"), ("user", "q2")), "user, assistant, user"),
        ((("assistant", "a"), ("user", "q")), "assistant, user"),
        ((("user", "q"), ("system", "s"), ("assistant", "a")), "user, system, assistant"),
        ((("user", "q"), ("tool", "t")), "user, tool"),
    ],
)
def test_alpaca_writer_rejects_what_is_not_one_exchange(turns, roles):
    with pytest.raises(RecordRejected) as e:
        get_format("alpaca").write(conv(*turns))
    assert e.value.reason == "not_single_exchange"
    assert e.value.message == (
        "alpaca holds one user turn and one assistant turn (after any system turns); "
        f"this conversation has roles {roles}"
    )


def test_alpaca_writer_empty_conversation():
    with pytest.raises(RecordRejected, match="this conversation has no turns$"):
        get_format("alpaca").write(conv())


def test_alpaca_writer_history_option():
    fmt = get_format("alpaca", history=True)
    out = fmt.write(conv(("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")))
    assert out == {
        "id": "c1",
        "history": [["q1", "a1"]],
        "instruction": "q2",
        "input": "",
        "output": "a2",
    }
    # and the reader reads it back to the same turns
    (back,) = read("alpaca", out)
    assert [(t.role, t.content) for t in back.turns] == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]


def test_alpaca_round_trip_through_the_writer_is_stable():
    record = {"instruction": "Sum.", "input": "1 2", "output": "3"}
    (first,) = read("alpaca", record)
    written = get_format("alpaca").write(first)
    (second,) = read("alpaca", json.loads(json.dumps(written)))
    assert [(t.role, t.content) for t in second.turns] == [(t.role, t.content) for t in first.turns]
    assert second.id == first.id


@pytest.mark.parametrize("template", ["default", "fastchat", "llama-factory", "stanford"])
def test_alpaca_to_alpaca_gives_instruction_and_input_back(template):
    record = {"instruction": "Sum the numbers.", "input": "1 2", "output": "3"}
    (c,) = read(get_format("alpaca", prompt_template=template), record)
    out = get_format("alpaca").write(c)
    assert (out["instruction"], out["input"], out["output"]) == ("Sum the numbers.", "1 2", "3")


def test_dolly_context_goes_back_to_input():
    record = {"instruction": "Who wrote it?", "context": "A book by Ann.", "response": "Ann.",
              "category": "closed_qa"}
    (c,) = read("dolly", record)
    out = get_format("alpaca").write(c)
    assert (out["instruction"], out["input"], out["category"]) == (
        "Who wrote it?", "A book by Ann.", "closed_qa"
    )


def test_a_changed_user_turn_is_written_whole():
    # What the template made of instruction and input is no longer the turn: the split
    # cannot be checked, so the turn is the instruction, as for any other reader's.
    (c,) = read("alpaca", {"instruction": "Sum.", "input": "1 2", "output": "3"})
    c.turns[0].content = "Sum.\n\n1 2 3"
    out = get_format("alpaca").write(c)
    assert (out["instruction"], out["input"]) == ("Sum.\n\n1 2 3", "")


def test_alpaca_writer_rejects_images_it_cannot_hold():
    image = {"content_parts": [{"type": "text", "text": "What is this?"},
                               {"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}
    c = Conversation("i", [Turn("user", "What is this?", image), Turn("assistant", "A cat.")])
    with pytest.raises(RecordRejected) as e:
        get_format("alpaca").write(c)
    assert (e.value.reason, e.value.message) == (
        "non_text_content",
        "alpaca holds text only; turn 0 has 1 non-text part (image_url)",
    )


def test_alpaca_writer_escapes_fields_its_reader_takes_as_turns():
    # From another format, "system" and "history" are data; written as they are, the alpaca
    # reader would read them back as a system turn and earlier exchanges.
    c = Conversation(
        "a",
        [Turn("user", "Hi?"), Turn("assistant", "Hello.")],
        {"history": [["a", "b"]], "system": "S", "convkit:output": 2, "note": 1},
    )
    out = get_format("alpaca").write(c)
    assert out == {
        "id": "a",
        "instruction": "Hi?",
        "input": "",
        "output": "Hello.",
        "convkit:history": [["a", "b"]],
        "convkit:system": "S",
        "convkit:convkit:output": 2,
        "note": 1,
    }
    (back,) = get_format("alpaca").read(out, Source("x", 0))
    assert [t.role for t in back.turns] == ["user", "assistant"]
    assert back.meta == {
        "history": [["a", "b"]],
        "system": "S",
        "convkit:output": 2,
        "note": 1,
        "convkit": {"reader": "alpaca", "prompt_template": "default"},
    }
