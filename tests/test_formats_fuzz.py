"""No reader crashes: any JSON value, or a valid record with one field replaced by any JSON value,
gives conversations or rejections with a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convkit.formats import Rejection, format_names, get_format
from convkit.io import RawRecord
from convkit.model import Conversation

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

VALID = {
    "sharegpt": {
        "id": "a",
        "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
    },
    "messages": {"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]},
    "alpaca": {
        "instruction": "i",
        "input": "x",
        "output": "o",
        "history": [["q", "a"]],
        "system": "s",
    },
    "dolly": {"instruction": "i", "context": "c", "response": "r", "category": "k"},
    "lima": {"conversations": ["q", "a", "q"], "source": "s"},
    "baize": {"input": "p\n[|Human|] q\n[|AI|] a\n[|Human|] ", "topic": "t"},
    "super-ni": {
        "Definition": ["d"],
        "Positive Examples": [{"input": "i", "output": "o"}],
        "Instances": [{"id": "x", "input": "i", "output": ["o"]}],
    },
    "natural-instructions": {
        "Definition": "d",
        "Examples": {"Positive Examples": [{"input": "i", "output": "o"}]},
        "Instances": [{"input": "i", "output": ["o"]}],
    },
    "unnatural": {
        "instruction": "i",
        "instances": [{"input": "x", "constraints": "c", "output": "o"}],
        "reformulations": [{"instruction_with_input": "r", "output": "o"}],
    },
    "flan": {"inputs": "q", "targets": "a", "task": "t"},
    "oasst": {
        "message_tree_id": "t",
        "prompt": {
            "message_id": "p",
            "role": "prompter",
            "text": "q",
            "replies": [{"message_id": "a", "role": "assistant", "text": "a", "rank": 0}],
        },
    },
    "text": {"text": "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n"},
}
OPTIONS = {
    "super-ni": {"fewshot": 1},
    "natural-instructions": {"fewshot": 1},
    "unnatural": {"with_reformulations": True},
    "oasst": {"best": True},
}


def run(name, value):
    fmt = get_format(name, **OPTIONS.get(name, {}))
    out = list(fmt.read_stream([RawRecord("f.jsonl", 0, 1, value)]))
    for item in out:
        assert isinstance(item, (Conversation, Rejection))
        if isinstance(item, Rejection):
            assert item.reason and item.message
    return out


def test_every_reader_has_a_valid_example():
    assert set(VALID) == set(format_names(readable=True))
    for name, record in VALID.items():
        out = run(name, record)
        assert out and all(isinstance(c, Conversation) for c in out), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(VALID)), value=JSON)
def test_any_json_value(name, value):
    run(name, value)
    list(get_format("auto").read_stream([RawRecord("f", 0, 1, value)]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(VALID)), data=st.data())
def test_valid_record_with_one_field_replaced(name, data):
    record = _copy(VALID[name])
    paths = list(_paths(record))
    path = data.draw(st.sampled_from(paths))
    _set(record, path, data.draw(JSON))
    run(name, record)
    list(get_format("auto").read_stream([RawRecord("f", 0, 1, record)]))


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _paths(v, prefix=()):
    if isinstance(v, dict):
        for k, x in v.items():
            yield (*prefix, k)
            yield from _paths(x, (*prefix, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield (*prefix, i)
            yield from _paths(x, (*prefix, i))


def _set(v, path, value):
    for p in path[:-1]:
        v = v[p]
    v[path[-1]] = value
