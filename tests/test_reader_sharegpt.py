"""The ShareGPT reader and writer: one line per rule."""

from __future__ import annotations

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.model import Source

SG = get_format("sharegpt")
SRC = Source("in.json", 7)


def read(record):
    return list(SG.read(record, SRC))


def reason(record):
    with pytest.raises(RecordRejected) as e:
        read(record)
    return e.value.reason, e.value.message


@pytest.mark.parametrize(
    ("speaker", "role"),
    [
        ("human", "user"),
        ("user", "user"),
        ("gpt", "assistant"),
        ("chatgpt", "assistant"),
        ("bing", "assistant"),
        ("bard", "assistant"),
        ("system", "system"),
        ("Human", "user"),
        ("model", "assistant"),
        ("function_call", "assistant"),
        ("observation", "tool"),
    ],
)
def test_speakers_seen_in_real_dumps_map_to_roles(speaker, role):
    (conv,) = read({"id": "a", "conversations": [{"from": speaker, "value": "x"}]})
    assert conv.turns[0].role == role


def test_other_fields_are_metadata_and_written_back():
    rec = {
        "id": "a",
        "model": "gpt-4",
        "conversations": [{"from": "chatgpt", "value": "x", "markdown": "y"}],
    }
    (conv,) = read(rec)
    assert conv.meta == {"model": "gpt-4"}
    assert conv.turns[0].meta == {"from": "chatgpt", "markdown": "y"}
    assert SG.write(conv) == {
        "id": "a",
        "conversations": [{"from": "gpt", "value": "x", "markdown": "y"}],
        "model": "gpt-4",
    }


def test_a_record_without_id_gets_its_place_as_id():
    (conv,) = read({"conversations": []})
    assert conv.id == "in.json#7"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("text", ("invalid_record", "expected a JSON object, got string")),
        ({"id": "a"}, ("invalid_record", 'missing "conversations"')),
        (
            {"id": "a", "conversations": None},
            ("invalid_record", 'expected "conversations" to be a list, got null'),
        ),
        (
            {"id": "a", "conversations": [3]},
            ("invalid_record", "expected conversations[0] to be an object, got number"),
        ),
        (
            {"id": "a", "conversations": [{"value": "x"}]},
            ("invalid_record", "missing conversations[0].from"),
        ),
        (
            {"id": "a", "conversations": [{"from": "gpt"}]},
            ("invalid_record", "missing conversations[0].value"),
        ),
        (
            {"id": "a", "conversations": [{"from": "gpt", "value": ["x"]}]},
            ("invalid_record", "expected conversations[0].value to be a string, got array"),
        ),
        (
            {"id": "a", "conversations": [{"from": "robot", "value": "x"}]},
            ("unknown_role", "unknown speaker 'robot' in conversations[0].from"),
        ),
        (
            {"id": ["a"], "conversations": []},
            ("invalid_record", 'expected "id" to be a string or an integer, got array'),
        ),
        (
            {"id": 1.5, "conversations": []},
            ("invalid_record", 'expected "id" to be a string or an integer, got number'),
        ),
    ],
)
def test_wrong_shapes_are_rejected_with_exact_messages(record, expected):
    assert reason(record) == expected


def test_llama_factory_tool_turns_read_in_order_and_write_with_fastchat_names():
    call = '{"name": "weather", "arguments": {"city": "Oslo"}}'
    record = {"id": "t", "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call", "value": call},
        {"from": "observation", "value": '{"sky": "grey"}'},
        {"from": "gpt", "value": "Grey."},
    ]}
    (conv,) = read(record)
    assert conv.roles() == ["user", "assistant", "tool", "assistant"]
    assert [t.content for t in conv.turns][1] == call
    # Written with the FastChat names, as every other speaker is.
    names = [t["from"] for t in SG.write(conv)["conversations"]]
    assert names == ["human", "gpt", "tool", "gpt"]
