"""Super-NaturalInstructions and Natural Instructions v1 task files."""

from __future__ import annotations

import json

import pytest

from convkit.errors import ConfigError
from convkit.formats import RecordRejected, Rejection, get_format
from convkit.io import read_records
from convkit.model import Conversation, Source

TASK = {
    "Contributors": ["x"],
    "Categories": ["Answer Generation"],
    "Definition": ["Return the capital of the country."],
    "Positive Examples": [
        {"input": "France", "output": "Paris", "explanation": "."},
        {"input": "Italy", "output": "Rome", "explanation": "."},
        {"input": "Spain", "output": "Madrid", "explanation": "."},
    ],
    "Negative Examples": [],
    "Instances": [
        {"id": "task9-a", "input": "Peru", "output": ["Lima", "Lima city"]},
        {"id": "task9-b", "input": "Chile", "output": ["Santiago"]},
    ],
}
SRC = Source("tasks/task9_capitals.json", 0, 1)


def read(record=TASK, source=SRC, fmt="super-ni", **options):
    return list(get_format(fmt, **options).read(record, source))


def test_zero_shot():
    a, b = read()
    assert a.id == "task9_capitals/task9-a"
    assert [(t.role, t.content) for t in a.turns] == [
        ("user", "Return the capital of the country.\n\nPeru"),
        ("assistant", "Lima"),
    ]
    assert a.meta == {
        "task": "task9_capitals",
        "categories": ["Answer Generation"],
        "convkit": {"reader": "super-ni", "prompt_template": "zero-shot"},
    }
    assert b.turns[1].content == "Santiago"


def test_instances_without_ids_are_numbered():
    task = {**TASK, "Instances": [{"input": "Peru", "output": ["Lima"]}]}
    assert [c.id for c in read(task)] == ["task9_capitals/0"]


def test_few_shot_layout_and_seeded_choice():
    a, b = read(fewshot=2, seed=1)
    prov = a.meta["convkit"]
    assert prov["prompt_template"] == "few-shot"
    chosen = prov["fewshot_examples"]
    assert len(chosen) == 2 and chosen == sorted(chosen)
    ex = [TASK["Positive Examples"][i] for i in chosen]
    assert a.turns[0].content == (
        "Return the capital of the country.\n\n"
        f"Example 1:\nInput: {ex[0]['input']}\nOutput: {ex[0]['output']}\n\n"
        f"Example 2:\nInput: {ex[1]['input']}\nOutput: {ex[1]['output']}\n\n"
        "Now complete the following example:\nInput: Peru\nOutput:"
    )
    # Same seed, same choice, whatever else is read; another seed may choose otherwise.
    assert [c.meta["convkit"]["fewshot_examples"] for c in read(fewshot=2, seed=1)] == [
        a.meta["convkit"]["fewshot_examples"],
        b.meta["convkit"]["fewshot_examples"],
    ]
    seeds = {
        tuple(read(fewshot=2, seed=s)[0].meta["convkit"]["fewshot_examples"]) for s in range(20)
    }
    assert len(seeds) > 1


def test_few_shot_with_more_than_there_are_uses_all():
    (a, _) = read(fewshot=10)
    assert a.meta["convkit"]["fewshot_examples"] == [0, 1, 2]


def test_task_name_from_a_field_or_a_later_record():
    assert read({**TASK, "task_name": "capitals"})[0].meta["task"] == "capitals"
    assert read(source=Source("all.jsonl", 3, 4))[0].id == "all#3/task9-a"
    assert read(source=Source("t.json.gz", 0))[0].meta["task"] == "t"


def test_a_bad_instance_is_rejected_alone():
    task = {
        **TASK,
        "Instances": [
            {"input": "Peru", "output": []},
            {"input": 5, "output": ["x"]},
            {"input": "Chile", "output": ["Santiago"]},
            {"input": "Cuba", "output": [3]},
            7,
        ],
    }
    out = read(task)
    assert [(r.reason, r.message, r.id) for r in out if isinstance(r, Rejection)] == [
        ("no_output", "Instances[0].output is an empty list", "task9_capitals/0"),
        (
            "invalid_record",
            "expected Instances[1].input to be a string, got number",
            "task9_capitals/1",
        ),
        (
            "invalid_record",
            "expected Instances[3].output[0] to be a string, got number",
            "task9_capitals/3",
        ),
        ("invalid_record", "expected Instances[4] to be an object, got number", "task9_capitals/4"),
    ]
    assert [c.id for c in out if isinstance(c, Conversation)] == ["task9_capitals/2"]


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"Definition": 3},
            'expected "Definition" to be a string or a list of strings, got number',
        ),
        ({"Instances": {}}, 'expected "Instances" to be a list, got object'),
    ],
)
def test_whole_task_rejections(change, message):
    with pytest.raises(RecordRejected) as e:
        read({**TASK, **change})
    assert (e.value.reason, e.value.message) == ("invalid_record", message)


def test_bad_examples_reject_the_task_only_when_few_shot():
    task = {**TASK, "Positive Examples": [{"input": 1, "output": "x"}]}
    assert len(read(task)) == 2
    with pytest.raises(
        RecordRejected, match=r"^expected Positive Examples\[0\]\.input to be a string, got number$"
    ):
        read(task, fewshot=1)


def test_real_task_file(shared_data):
    path = shared_data / "formats" / "super_natural_instructions" / "task1146_country_capital.json"
    out = list(get_format("super-ni").read_stream(read_records(path)))
    assert len(out) == 231 and all(isinstance(c, Conversation) for c in out)
    assert out[0].id == "task1146_country_capital/0"
    assert out[0].turns[0].content == (
        "In this task, you are given a country and you need to return the capital city of the "
        "given country\n\nAfghanistan"
    )
    assert out[0].turns[1].content == "Kabul"
    assert len({c.id for c in out}) == 231
    few = list(get_format("super-ni", fewshot=2).read_stream(read_records(path)))
    assert all("Example 2:\nInput: " in c.turns[0].content for c in few)


# --------------------------------------------------------------------------- Natural Instructions v1

V1 = {
    "Title": "Answering questions",
    "Prompt": "Answer the question.",
    "Definition": "Read the passage and answer.",
    "Things to Avoid": "-",
    "Emphasis & Caution": "Be short.",
    "Examples": {
        "Positive Examples": [{"input": "Q1", "output": "A1", "reason": "r"}],
        "Negative Examples": [{"input": "Q2", "output": "B", "reason": "r", "suggestion": "s"}],
    },
    "Instances": [{"input": "Q3", "output": ["A3"]}],
}


def test_v1_zero_shot_uses_the_definition():
    (c,) = read(V1, Source("subtask002_quoref.json", 0), fmt="natural-instructions")
    assert c.id == "subtask002_quoref/0"
    assert c.turns[0].content == "Read the passage and answer.\n\nQ3"
    assert c.meta == {
        "task": "subtask002_quoref",
        "title": "Answering questions",
        "convkit": {"reader": "natural-instructions", "prompt_template": "zero-shot"},
    }


def test_v1_instruction_fields_skip_dashes():
    (c,) = read(
        V1,
        fmt="natural-instructions",
        instruction_fields="Definition,Prompt,Things to Avoid,Emphasis & Caution",
    )
    assert c.turns[0].content == (
        "Definition: Read the passage and answer.\nPrompt: Answer the question.\n"
        "Emphasis & Caution: Be short.\n\nQ3"
    )


def test_v1_few_shot_reads_examples_from_the_examples_object():
    (c,) = read(V1, fmt="natural-instructions", fewshot=1)
    assert "Example 1:\nInput: Q1\nOutput: A1\n\n" in c.turns[0].content


def test_v1_unknown_instruction_field():
    with pytest.raises(ConfigError) as e:
        get_format("natural-instructions", instruction_fields="Definition,Reason")
    assert str(e.value) == (
        "unknown instruction field 'Reason' for format 'natural-instructions'; "
        "known: Definition, Prompt, Things to Avoid, Emphasis & Caution"
    )


def test_task_file_read_from_disk_as_one_record(tmp_path):
    p = tmp_path / "task7_x.json"
    p.write_text(json.dumps(TASK, indent=4))
    out = list(get_format("auto").read_stream(read_records(p)))
    assert [c.id for c in out] == ["task7_x/task9-a", "task7_x/task9-b"]


@pytest.mark.parametrize("fmt", ["super-ni", "natural-instructions"])
def test_a_task_without_instances_is_rejected_with_its_field(fmt):
    task = {**(TASK if fmt == "super-ni" else V1), "Instances": []}
    with pytest.raises(RecordRejected, match='^"Instances" is an empty list$') as e:
        read(task, fmt=fmt)
    assert (e.value.reason, e.value.field) == ("no_conversation", "Instances")
