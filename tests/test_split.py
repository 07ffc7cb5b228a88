"""The public splitter: one guarantee, one drop reason or one error message per test.

Every test runs with each available packing backend (the twin always, the compiled core when
built), so the public behaviour is pinned for both.
"""

from __future__ import annotations

import pytest

from convkit import _fastsplit_py, split
from convkit.errors import ConfigError
from convkit.model import Conversation, Source, Turn
from convkit.split import DroppedPart, fastchat_boundaries, fastchat_split, split_conversation

try:
    from convkit import _fastsplit
except ImportError:  # the extension is not built: the twin alone is tested here
    _fastsplit = None

_BACKENDS = {"python": _fastsplit_py.plan}
if _fastsplit is not None:
    _BACKENDS["cython"] = _fastsplit.plan


@pytest.fixture(autouse=True, params=sorted(_BACKENDS))
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(split, "plan", _BACKENDS[request.param])
    return request.param


_NAMES = {"s": "system", "u": "user", "a": "assistant", "t": "tool"}


def make(roles: str, cid: str = "c", **meta: object) -> Conversation:
    """A conversation from role letters: "suaua" = system, user, assistant, user, assistant."""
    turns = [Turn(_NAMES[r], f"{r}{i}") for i, r in enumerate(roles)]
    return Conversation(id=cid, turns=turns, meta=dict(meta))


def contents(c: Conversation) -> list[str]:
    return [t.content for t in c.turns]


def run(roles: str, counts: list[int], max_tokens: int, **kw: object) -> split.SplitResult:
    return split_conversation(make(roles), counts, max_tokens=max_tokens, **kw)


# --- packing ---------------------------------------------------------------------------------


def test_conversation_that_fits_is_one_segment() -> None:
    r = run("uaua", [1, 2, 3, 4], 10)
    assert [contents(s) for s in r.segments] == [["u0", "a1", "u2", "a3"]]
    assert r.segment_tokens == [10]
    assert r.spans == [(0, 4)]
    assert r.dropped == []


def test_exchanges_are_packed_greedily_in_order() -> None:
    r = run("uauaua", [3, 3, 3, 3, 3, 3], 12)
    assert r.spans == [(0, 4), (4, 6)]
    assert r.segment_tokens == [12, 6]


def test_no_segment_is_over_the_limit() -> None:
    r = run("uauauaua", [5, 4, 1, 1, 6, 2, 3, 3], 10)
    assert r.segment_tokens == [9, 10, 6]
    assert all(t <= 10 for t in r.segment_tokens)


def test_final_exchange_is_not_lost_when_it_overflows() -> None:
    # FastChat emits [0, 2) here and never the final pair.
    r = run("uaua", [4, 4, 4, 4], 10)
    assert r.spans == [(0, 2), (2, 4)]


def test_segment_ids_are_id_underscore_k_in_order() -> None:
    r = split_conversation(make("uauaua", cid="x_1"), [5] * 6, max_tokens=10)
    assert [s.id for s in r.segments] == ["x_1_0", "x_1_1", "x_1_2"]


def test_segment_ids_count_only_written_segments() -> None:
    r = run("uauaua", [1, 1, 50, 50, 1, 1], 10)
    assert [s.id for s in r.segments] == ["c_0", "c_1"]


def test_segments_start_at_user_and_end_at_assistant() -> None:
    r = run("uatauuaua", [3] * 9, 12)
    assert [s.roles() for s in r.segments] == [
        ["user", "assistant", "tool", "assistant"],
        ["user", "user", "assistant"],
        ["user", "assistant"],
    ]


def test_consecutive_user_turns_are_one_exchange() -> None:
    r = run("uuaua", [3, 3, 3, 3, 3], 9)
    assert r.spans == [(0, 3), (3, 5)]


# --- the system prompt -------------------------------------------------------------------------


def test_system_prompt_is_carried_into_every_segment() -> None:
    r = run("suaua", [1, 4, 4, 4, 4], 10)
    assert [contents(s) for s in r.segments] == [["s0", "u1", "a2"], ["s0", "u3", "a4"]]


def test_system_prompt_is_counted_in_every_segment() -> None:
    # Without the system prompt both exchanges (8) would fit in 10; with it (3) they do not.
    r = run("suaua", [3, 2, 2, 2, 2], 10)
    assert r.spans == [(1, 3), (3, 5)]
    assert r.segment_tokens == [7, 7]


def test_all_leading_system_turns_are_the_system_prompt() -> None:
    r = run("ssua", [1, 1, 1, 1], 10)
    assert contents(r.segments[0]) == ["s0", "s1", "u2", "a3"]
    assert r.segment_tokens == [4]


def test_system_turn_inside_an_exchange_stays_in_place() -> None:
    r = run("uasua", [1] * 5, 3)
    assert [contents(s) for s in r.segments] == [["u0", "a1"], ["u3", "a4"]]
    assert r.dropped == [DroppedPart(2, 3, "no_assistant_reply", 1)]


def test_system_prompt_over_the_limit_makes_every_exchange_oversize() -> None:
    r = run("suaua", [20, 1, 1, 1, 1], 10)
    assert r.segments == []
    assert r.dropped == [
        DroppedPart(1, 3, "oversize_exchange", 2),
        DroppedPart(3, 5, "oversize_exchange", 2),
        DroppedPart(0, 1, "unused_system_prompt", 20),
    ]


def test_system_prompt_over_the_limit_with_keep_gives_one_flagged_segment_per_exchange() -> None:
    r = run("suaua", [20, 1, 1, 1, 1], 10, oversize="keep")
    assert r.spans == [(1, 3), (3, 5)]
    assert r.segment_tokens == [22, 22]
    assert [s.meta for s in r.segments] == [{"oversize": True}, {"oversize": True}]


# --- overheads ---------------------------------------------------------------------------------


def test_turn_overhead_is_added_to_every_turn() -> None:
    r = run("suaua", [1, 1, 1, 1, 1], 20, turn_overhead=3)
    assert r.segment_tokens == [20]


def test_turn_overhead_changes_the_packing() -> None:
    r = run("uaua", [1, 1, 1, 1], 10, turn_overhead=2)
    assert r.spans == [(0, 2), (2, 4)]


def test_segment_overhead_is_added_once_per_segment() -> None:
    r = run("suauaua", [2, 1, 1, 1, 1, 1, 1], 9, segment_overhead=3)
    assert r.segment_tokens == [9, 7]


# --- oversize exchanges ------------------------------------------------------------------------


def test_oversize_exchange_is_dropped_by_default() -> None:
    r = run("uauaua", [1, 1, 8, 8, 1, 1], 10)
    assert r.dropped == [DroppedPart(2, 4, "oversize_exchange", 16)]


def test_rest_of_conversation_still_yields_segments_after_an_oversize_drop() -> None:
    r = run("uauaua", [1, 1, 8, 8, 1, 1], 10)
    assert r.spans == [(0, 2), (4, 6)]


def test_oversize_first_exchange_gives_no_empty_segment() -> None:
    r = run("uaua", [20, 20, 1, 1], 10)
    assert r.spans == [(2, 4)]
    assert [s.id for s in r.segments] == ["c_0"]


def test_oversize_keep_writes_the_exchange_as_its_own_flagged_segment() -> None:
    r = run("uauaua", [1, 1, 8, 8, 1, 1], 10, oversize="keep")
    assert r.spans == [(0, 2), (2, 4), (4, 6)]
    assert r.segment_tokens == [2, 16, 2]
    assert [s.meta.get("oversize") for s in r.segments] == [None, True, None]
    assert r.dropped == []


def test_oversize_is_counted_with_overheads_and_system_prompt() -> None:
    # 2 + 3 (system) + 2 + 2 (turn overheads) + 1 + 1 = 11 > 10
    r = run("sua", [1, 1, 1], 10, turn_overhead=2, segment_overhead=2)
    assert r.dropped[0] == DroppedPart(1, 3, "oversize_exchange", 6)


def test_exchange_exactly_at_the_limit_is_not_oversize() -> None:
    r = run("sua", [2, 4, 4], 10)
    assert r.segment_tokens == [10]
    assert r.segments[0].meta == {}


# --- drop reasons ------------------------------------------------------------------------------


def test_leading_non_user_turns_are_dropped() -> None:
    r = run("satua", [1, 2, 3, 1, 1], 10)
    assert r.dropped == [DroppedPart(1, 3, "leading_non_user", 5)]
    assert r.spans == [(3, 5)]


def test_trailing_user_turn_has_no_assistant_reply() -> None:
    r = run("uau", [1, 1, 4], 10)
    assert r.dropped == [DroppedPart(2, 3, "no_assistant_reply", 4)]


def test_tool_result_after_the_last_assistant_turn_has_no_assistant_reply() -> None:
    r = run("uat", [1, 1, 4], 10, turn_overhead=1)
    assert r.spans == [(0, 2)]
    assert r.dropped == [DroppedPart(2, 3, "no_assistant_reply", 5)]


def test_dropped_part_separates_the_segments_around_it() -> None:
    # The exchanges around the unanswered user turn would fit together, but a segment is a
    # contiguous run of turns.
    r = run("uautua", [1] * 6, 100)
    assert r.spans == [(0, 2), (4, 6)]
    assert r.dropped == [DroppedPart(2, 4, "no_assistant_reply", 2)]


def test_conversation_without_user_turns_is_all_leading_non_user() -> None:
    r = run("saa", [1, 1, 1], 10)
    assert r.dropped == [
        DroppedPart(1, 3, "leading_non_user", 2),
        DroppedPart(0, 1, "unused_system_prompt", 1),
    ]


def test_system_prompt_alone_is_unused() -> None:
    r = run("s", [5], 10)
    assert r.segments == []
    assert r.dropped == [DroppedPart(0, 1, "unused_system_prompt", 5)]


def test_empty_conversation_gives_nothing() -> None:
    r = run("", [], 10)
    assert (r.segments, r.segment_tokens, r.spans, r.dropped) == ([], [], [], [])


def test_every_turn_is_in_a_segment_or_a_dropped_part() -> None:
    roles = "saauauuatauatuaua"
    counts = [2, 1, 1, 1, 30, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 1]
    r = run(roles, counts, 12)
    covered = [0] * len(roles)
    for s, e in r.spans:
        for i in range(s, e):
            covered[i] += 1
    for d in r.dropped:
        for i in range(d.start, d.end):
            covered[i] += 1
    assert covered[1:] == [1] * (len(roles) - 1)
    assert [(d.start, d.end, d.reason) for d in r.dropped] == [
        (1, 3, "leading_non_user"),
        (3, 5, "oversize_exchange"),
        (12, 13, "no_assistant_reply"),
    ]


def test_drop_reasons_are_the_documented_ones() -> None:
    assert split.DROP_REASONS == (
        "leading_non_user",
        "no_assistant_reply",
        "no_context",
        "oversize_exchange",
        "unused_system_prompt",
    )


# --- requests to go on ("continue") ------------------------------------------------------------


def asking(roles: str, asks: set[int]) -> Conversation:
    """``make(roles)``, with the user turns at ``asks`` asking only to go on."""
    c = make(roles)
    for i in asks:
        c.turns[i] = Turn("user", "Continue please.")
    return c


def test_a_request_to_go_on_stays_with_what_it_continues() -> None:
    # Greedy packing would put u0-a1 and u2-a3 together and open the next segment with the
    # request (u4): it goes with u2-a3 instead, which it continues.
    c = asking("uauaua", {4})
    r = split_conversation(c, [20, 20, 20, 20, 20, 30], max_tokens=100)
    assert r.spans == [(0, 2), (2, 6)]
    assert r.segment_tokens == [40, 90]
    assert r.dropped == []


def test_a_request_to_go_on_that_cannot_stay_is_dropped_or_opens_a_segment() -> None:
    # u2-a3 and the request after it (u4-a5) do not fit together; nor does what follows it.
    c = asking("uauauaua", {4, 6})
    counts = [10, 10, 40, 40, 5, 40, 5, 10]
    dropped = split_conversation(c, counts, max_tokens=100)
    assert dropped.spans == [(0, 4)]
    assert [(d.start, d.end, d.reason, d.tokens) for d in dropped.dropped] == [
        (4, 6, "no_context", 45), (6, 8, "no_context", 15)
    ]
    assert [s.id for s in dropped.segments] == ["c_0"]
    kept = split_conversation(c, counts, max_tokens=100, continuations="keep")
    assert kept.spans == [(0, 4), (4, 8)] and kept.dropped == []


def test_a_conversation_that_starts_by_asking_to_go_on_keeps_its_start() -> None:
    # Shared that way, not cut by the splitter: the first segment is as the conversation is.
    c = asking("suaua", {1})
    r = split_conversation(c, [3, 1, 50, 10, 10], max_tokens=60)
    assert r.spans == [(1, 3), (3, 5)] and r.dropped == []
    assert split_conversation(asking("ua", {0}), [1, 5], max_tokens=60).spans == [(0, 2)]


def test_continuations_policy_is_checked() -> None:
    with pytest.raises(ConfigError) as e:
        run("ua", [1, 1], 10, continuations="maybe")
    assert str(e.value) == "continuations must be 'drop' or 'keep', got 'maybe'"


# --- what segments carry -----------------------------------------------------------------------


def test_meta_is_copied_into_each_segment() -> None:
    conv = make("uaua", model="gpt-4", lang="en")
    r = split_conversation(conv, [5, 5, 5, 5], max_tokens=10)
    assert [s.meta for s in r.segments] == [{"model": "gpt-4", "lang": "en"}] * 2
    r.segments[0].meta["x"] = 1
    assert conv.meta == {"model": "gpt-4", "lang": "en"}
    assert r.segments[1].meta == {"model": "gpt-4", "lang": "en"}


def test_source_and_raw_are_copied() -> None:
    conv = make("ua")
    conv.source = Source("in.json", 7)
    conv.raw = {"id": "c"}
    seg = split_conversation(conv, [1, 1], max_tokens=10).segments[0]
    assert (seg.source, seg.raw) == (Source("in.json", 7), {"id": "c"})


def test_original_conversation_is_not_changed() -> None:
    conv = make("suaua")
    split_conversation(conv, [1, 5, 5, 5, 5], max_tokens=12)
    assert (conv.id, contents(conv)) == ("c", ["s0", "u1", "a2", "u3", "a4"])


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be a positive integer, got 0"),
        ({"max_tokens": -5}, "max_tokens must be a positive integer, got -5"),
        ({"max_tokens": 2.5}, "max_tokens must be a positive integer, got 2.5"),
        ({"max_tokens": True}, "max_tokens must be a positive integer, got True"),
        (
            {"max_tokens": 10, "turn_overhead": -1},
            "turn_overhead must be a non-negative integer, got -1",
        ),
        (
            {"max_tokens": 10, "segment_overhead": "2"},
            "segment_overhead must be a non-negative integer, got '2'",
        ),
        ({"max_tokens": 10, "oversize": "x"}, "oversize must be 'drop' or 'keep', got 'x'"),
        (
            {"max_tokens": 10, "segment_overhead": 4, "turn_overhead": 3},
            "max_tokens 10 leaves no room for any exchange: "
            "segment_overhead 4 + 2 x turn_overhead 3 = 10",
        ),
    ],
)
def test_invalid_option_is_a_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        split_conversation(make("ua"), [1, 1], **kwargs)  # type: ignore[arg-type]
    assert str(e.value) == message


def test_check_split_options_accepts_valid_options() -> None:
    split.check_split_options(max_tokens=10, turn_overhead=2, segment_overhead=5, oversize="keep")


def test_counts_of_the_wrong_length_are_a_value_error() -> None:
    with pytest.raises(ValueError) as e:
        split_conversation(make("uaua"), [1, 1, 1], max_tokens=10)
    assert (
        str(e.value) == "counts must have one entry per turn: got 3 for 4 turns in conversation 'c'"
    )


def test_negative_count_is_a_value_error() -> None:
    with pytest.raises(ValueError) as e:
        split_conversation(make("ua"), [1, -1], max_tokens=10)
    assert (
        str(e.value)
        == "counts must be non-negative integers, got -1 for turn 1 in conversation 'c'"
    )


# --- FastChat's rule, bugs included ------------------------------------------------------------


def test_fastchat_adds_six_per_message() -> None:
    assert fastchat_boundaries([1, 1, 1, 1], max_length=28) == [(0, 4)]
    assert fastchat_boundaries([1, 1, 1, 1], max_length=27) == [(0, 2)]


def test_fastchat_loses_the_final_pair_when_it_overflows() -> None:
    # pairs cost 20, 20, 20: the third overflows, [0, 4) is emitted and [4, 6) never is.
    assert fastchat_boundaries([4] * 6, max_length=40) == [(0, 4)]


def test_fastchat_emits_an_empty_then_an_over_limit_segment_with_the_same_id() -> None:
    conv = make("uaua", model="m", lang="en")
    segs = fastchat_split(conv, [100, 100, 1, 1], max_length=50)
    assert [(s.id, contents(s)) for s in segs] == [("c_0", []), ("c_0", ["u0", "a1"])]
    assert segs[0].meta == {"model": "m"}


def test_fastchat_drops_an_odd_last_message() -> None:
    assert fastchat_boundaries([1, 1, 1], max_length=100) == [(0, 2)]


def test_fastchat_ids_use_the_start_index() -> None:
    segs = fastchat_split(make("uauaua"), [10] * 6, max_length=40)
    assert [s.id for s in segs] == ["c_0", "c_2"]
