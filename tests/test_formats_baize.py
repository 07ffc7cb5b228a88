"""Baize: split on [|Human|] / [|AI|], drop the preamble and empty rounds, reject broken rounds."""

from __future__ import annotations

import pytest

from convkit.formats import RecordRejected, get_format
from convkit.io import read_records
from convkit.model import Source

SRC = Source("baize.json", 0)
PRE = "The conversation between human and AI assistant.\n"


def read(text, **extra):
    return list(get_format("baize").read({"input": text, **extra}, SRC))


def turns(text):
    (conv,) = read(text)
    return [(t.role, t.content) for t in conv.turns]


def reject(text):
    with pytest.raises(RecordRejected) as e:
        read(text)
    return e.value.reason, e.value.message


def test_rounds_and_the_trailing_empty_human_marker():
    text = PRE + "[|Human|] Hi\n[|AI|] Hello!\n[|Human|] How?\n[|AI|] Like so.\n[|Human|] "
    assert turns(text) == [
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "How?"),
        ("assistant", "Like so."),
    ]


def test_preamble_is_dropped_and_topic_kept():
    (conv,) = read(PRE + "[|Human|] Hi\n[|AI|] Hello!", topic="greeting")
    assert conv.turns[0].content == "Hi"
    assert conv.meta == {"topic": "greeting", "convkit": {"reader": "baize"}}


def test_empty_rounds_are_dropped():
    assert turns(PRE + "[|Human|] \n[|Human|] Hi\n[|AI|] Yo\n[|Human|] [|AI|] \n[|Human|]") == [
        ("user", "Hi"),
        ("assistant", "Yo"),
    ]


def test_last_round_without_answer_is_a_trailing_user_turn():
    assert turns(PRE + "[|Human|] Hi\n[|AI|] Yo\n[|Human|] And?") == [
        ("user", "Hi"),
        ("assistant", "Yo"),
        ("user", "And?"),
    ]


def test_two_ai_markers_in_a_round_are_rejected_not_a_crash():
    assert reject(PRE + "[|Human|] Hi\n[|AI|] Yo\n[|AI|] Again\n[|Human|] ") == (
        "repeated_ai_marker",
        'round 1 has 2 "[|AI|]" markers',
    )


def test_unanswered_round_in_the_middle_is_rejected():
    assert reject(PRE + "[|Human|] Hi\n[|Human|] Hello?\n[|AI|] Yo") == (
        "missing_ai_marker",
        'round 1 has no "[|AI|]" marker but is not the last',
    )
    assert reject(PRE + "[|Human|] Hi\n[|AI|] \n[|Human|] Hello?\n[|AI|] Yo") == (
        "empty_ai_turn",
        "round 1 has an empty answer but is not the last",
    )


def test_no_markers_or_nothing_in_them():
    assert reject("just text") == ("no_turns", '"input" holds no "[|Human|]" marker')
    assert reject(PRE + "[|Human|] \n[|Human|]") == ("no_turns", "every round is empty")


def test_wrong_type():
    with pytest.raises(RecordRejected) as e:
        list(get_format("baize").read({"input": ["x"]}, SRC))
    assert e.value.message == 'expected "input" to be a string, got array'


def test_real_korean_baize_sample(shared_data):
    path = shared_data / "formats" / "baize" / "quora_chat_data.ko.json"
    items = list(get_format("baize").read_stream(read_records(path)))
    assert len(items) == 96
    for conv in items:
        assert conv.turns and conv.roles()[0] == "user"
        assert all(t.content and "[|" not in t.content for t in conv.turns)
        assert conv.roles() == ["user", "assistant"] * (len(conv.turns) // 2)  # no trailing user
        assert "topic" in conv.meta
    first = items[0]
    assert (
        first.turns[0].content
        == "인도에서 주식 시장에 투자하기 위한 단계별 가이드가 어떻게 되나요?"
    )
