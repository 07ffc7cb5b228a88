"""Flan / P3 / T0: inputs and targets, pretokenized text preferred, task and template to meta."""

from __future__ import annotations

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.model import Source

SRC = Source("flan.jsonl", 4, 5)


def read(record):
    (conv,) = get_format("flan").read(record, SRC)
    return conv


def test_inputs_and_targets_with_task_and_template_type():
    conv = read(
        {
            "inputs": "Q?",
            "targets": "A.",
            "task_name": "cot_gsm8k",
            "template_type": "zs_opt",
            "task_source": "CoT",
        }
    )
    assert [(t.role, t.content) for t in conv.turns] == [("user", "Q?"), ("assistant", "A.")]
    assert conv.meta == {
        "task": "cot_gsm8k",
        "template_type": "zs_opt",
        "task_source": "CoT",
        "convkit": {"reader": "flan"},
    }
    assert conv.id == "flan.jsonl#4"


def test_p3_pretokenized_text_wins_and_ids_are_not_copied():
    conv = read(
        {
            "inputs": [363, 19, 8],
            "inputs_pretokenized": "Is it?",
            "targets": [4273, 1],
            "targets_pretokenized": "yes",
            "answer_choices": ["yes", "no"],
            "_task_name": "super_glue_boolq",
        }
    )
    assert [t.content for t in conv.turns] == ["Is it?", "yes"]
    assert conv.meta == {
        "task": "super_glue_boolq",
        "answer_choices": ["yes", "no"],
        "convkit": {"reader": "flan"},
    }


def test_null_pretokenized_text_falls_back_to_the_text_field():
    conv = read({"inputs": "Q?", "inputs_pretokenized": None, "targets": "A."})
    assert [t.content for t in conv.turns] == ["Q?", "A."]


@pytest.mark.parametrize(
    "record,message",
    [
        ({"inputs": "q"}, 'missing "targets"'),
        ({"inputs": [1, 2], "targets": "a"}, 'expected "inputs" to be a string, got array'),
        (
            {"inputs_pretokenized": 3, "targets": "a"},
            'expected "inputs_pretokenized" to be a string, got number',
        ),
        (
            {"inputs_pretokenized": None, "inputs": None, "targets": "a"},
            'expected "inputs" to be a string, got null',
        ),
    ],
)
def test_rejections(record, message):
    with pytest.raises(RecordRejected) as e:
        read(record)
    assert (e.value.reason, e.value.message) == ("invalid_record", message)
