"""LIMA: alternating turns from the user; an odd count keeps (and flags) the trailing user turn."""

from __future__ import annotations

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.model import Source

SRC = Source("lima.jsonl", 0, 1)


def read(record):
    return list(get_format("lima").read(record, SRC))


def test_even_count_alternates_from_the_user():
    (conv,) = read({"conversations": ["q1", "a1", "q2", "a2"], "source": "multi_turn"})
    assert conv.roles() == ["user", "assistant", "user", "assistant"]
    assert [t.content for t in conv.turns] == ["q1", "a1", "q2", "a2"]
    assert conv.meta == {"source": "multi_turn", "convkit": {"reader": "lima"}}


def test_odd_count_keeps_the_trailing_user_turn_and_says_so():
    # The pipeline's filter chain trims it and counts it as trailing_user_turn.
    (conv,) = read({"conversations": ["q1", "a1", "q2"], "source": "s"})
    assert conv.roles() == ["user", "assistant", "user"]
    assert conv.meta["convkit"] == {"reader": "lima", "trailing_user_turn": True}


@pytest.mark.parametrize(
    "record,expected",
    [
        (
            {"conversations": ["q", 2]},
            ("invalid_record", "expected conversations[1] to be a string, got number"),
        ),
        (
            {"conversations": "q"},
            ("invalid_record", 'expected "conversations" to be a list, got string'),
        ),
        ({"source": "s"}, ("invalid_record", 'missing "conversations"')),
    ],
)
def test_rejections(record, expected):
    with pytest.raises(RecordRejected) as e:
        read(record)
    assert (e.value.reason, e.value.message) == expected


def test_not_mistaken_for_sharegpt():
    from convkit.formats import detect_record

    assert detect_record({"conversations": ["q", "a"]}).name == "lima"
    assert detect_record({"conversations": [{"from": "human", "value": "q"}]}).name == "sharegpt"
