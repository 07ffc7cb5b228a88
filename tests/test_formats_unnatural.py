"""Unnatural Instructions: one conversation per instance, constraints, reformulations."""

from __future__ import annotations

import pytest

from convkit.formats import Rejection, get_format
from convkit.model import Conversation, Source

SRC = Source("core_data.jsonl", 2, 3)

RECORD = {
    "instruction": "Given a word, write its plural.",
    "instances": [
        {
            "instruction_with_input": "Given a word, write its plural.\nWord: cat",
            "input": "Word: cat",
            "constraints": "None.",
            "output": "cats",
        },
        {"input": "Word: ox", "constraints": "The answer must be one word.", "output": "oxen"},
        {"input": "", "constraints": "", "output": "?"},
    ],
    "reformulations": [
        {
            "instruction": "Pluralise the word.",
            "instruction_with_input": "Pluralise: mouse",
            "input": "mouse",
            "output": "mice",
        },
    ],
}


def read(record, **options):
    return list(get_format("unnatural", **options).read(record, SRC))


def test_one_conversation_per_instance():
    out = read(RECORD)
    assert [c.id for c in out] == [
        "core_data.jsonl#2/instances/0",
        "core_data.jsonl#2/instances/1",
        "core_data.jsonl#2/instances/2",
    ]
    assert (
        out[0].turns[0].content == "Given a word, write its plural.\nWord: cat"
    )  # "None." is no constraint
    assert out[1].turns[0].content == (
        "Given a word, write its plural.\n\nWord: ox\n\nThe answer must be one word."
    )
    assert out[2].turns[0].content == "Given a word, write its plural."
    assert [c.turns[1].content for c in out] == ["cats", "oxen", "?"]
    assert out[0].meta == {"convkit": {"reader": "unnatural", "part": "instances"}}


@pytest.mark.parametrize("none", ["none", "None", " NONE. ", "", "   "])
def test_empty_or_none_constraints_are_not_appended(none):
    (conv,) = read(
        {"instruction": "Do.", "instances": [{"input": "x", "constraints": none, "output": "y"}]}
    )
    assert conv.turns[0].content == "Do.\n\nx"


def test_reformulations_only_with_the_option():
    assert len(read(RECORD)) == 3
    out = read(RECORD, with_reformulations=True)
    assert len(out) == 4
    assert out[3].id == "core_data.jsonl#2/reformulations/0"
    assert out[3].turns[0].content == "Pluralise: mouse"
    assert out[3].meta["convkit"]["part"] == "reformulations"


def test_a_bad_instance_is_rejected_alone():
    out = read(
        {
            "id": "u1",
            "instruction": "Do.",
            "instances": [
                {"input": "x", "output": "y"},
                {"input": "x"},
                "junk",
                {"input": 3, "output": "y"},
            ],
        }
    )
    assert isinstance(out[0], Conversation)
    assert [(r.reason, r.message, r.id) for r in out[1:]] == [
        ("invalid_record", "missing instances[1].output", "u1/instances/1"),
        ("invalid_record", "expected instances[2] to be an object, got string", "u1/instances/2"),
        (
            "invalid_record",
            "expected instances[3].input to be a string, got number",
            "u1/instances/3",
        ),
    ]
    assert all(isinstance(r, Rejection) and r.source == SRC for r in out[1:])


def test_whole_record_rejections():
    from convkit.formats import RecordRejected

    with pytest.raises(RecordRejected, match='^expected "instances" to be a list, got object$'):
        read({"instruction": "Do.", "instances": {}})
    with pytest.raises(RecordRejected, match='^missing "instruction"$'):
        read({"instances": []})


def test_a_record_without_instances_is_rejected_with_its_field():
    from convkit.formats import RecordRejected

    with pytest.raises(RecordRejected, match='^"instances" is an empty list$') as e:
        read({"instruction": "Do.", "instances": []})
    assert (e.value.reason, e.value.field) == ("no_conversation", "instances")
    # With reformulations asked for, either list may hold the conversations.
    (c,) = read(
        {"instruction": "Do.", "instances": [], "reformulations": [{"input": "a", "output": "b"}]},
        with_reformulations=True,
    )
    assert c.turns[1].content == "b"
