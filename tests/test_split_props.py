"""The splitter's guarantees on random conversations (any roles, counts, overheads, limits)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from convkit.model import Conversation, Turn
from convkit.split import DROP_REASONS, SplitResult, split_conversation

ROLES = ["system", "user", "assistant", "tool"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[Conversation, list[int], dict[str, object]]:
    n_system = draw(st.integers(0, 2))
    roles = ["system"] * n_system + draw(
        st.lists(st.sampled_from(["user", "assistant"] * 3 + ["tool", "system"]), max_size=25)
    )
    counts = draw(st.lists(st.integers(0, 40), min_size=len(roles), max_size=len(roles)))
    turn_overhead = draw(st.integers(0, 4))
    segment_overhead = draw(st.integers(0, 6))
    max_tokens = draw(st.integers(segment_overhead + 2 * turn_overhead + 1, 150))
    oversize = draw(st.sampled_from(["drop", "keep"]))
    conv = Conversation("c", [Turn(r, f"{r}{i}") for i, r in enumerate(roles)], {"m": 1})
    options = {
        "max_tokens": max_tokens,
        "turn_overhead": turn_overhead,
        "segment_overhead": segment_overhead,
        "oversize": oversize,
    }
    return conv, counts, options


def split(case: tuple[Conversation, list[int], dict[str, object]]) -> SplitResult:
    conv, counts, options = case
    return split_conversation(conv, counts, **options)  # type: ignore[arg-type]


def n_system(conv: Conversation) -> int:
    return len(conv.system_turns())


@given(cases())
def test_no_segment_over_the_limit_unless_flagged(case: tuple) -> None:
    r = split(case)
    for seg, tokens in zip(r.segments, r.segment_tokens):
        assert seg.meta.get("oversize") or tokens <= case[2]["max_tokens"]


@given(cases())
def test_flagged_segments_only_with_keep_and_only_over_the_limit(case: tuple) -> None:
    r = split(case)
    for seg, tokens in zip(r.segments, r.segment_tokens):
        if seg.meta.get("oversize"):
            assert case[2]["oversize"] == "keep" and tokens > case[2]["max_tokens"]


@given(cases())
def test_segment_tokens_are_the_declared_costs(case: tuple) -> None:
    conv, counts, options = case
    r = split(case)
    k = n_system(conv)
    for (s, e), tokens in zip(r.spans, r.segment_tokens):
        turns = [*range(k), *range(s, e)]
        expected = options["segment_overhead"] + sum(
            counts[i] + options["turn_overhead"] for i in turns
        )
        assert tokens == expected


@given(cases())
def test_segments_carry_the_system_prompt_then_user_to_assistant(case: tuple) -> None:
    conv, _, _ = case
    r = split(case)
    k = n_system(conv)
    for seg, (s, e) in zip(r.segments, r.spans):
        assert seg.turns == [*conv.turns[:k], *conv.turns[s:e]]
        assert s < e
        assert seg.turns[k].role == "user" and seg.turns[-1].role == "assistant"


@given(cases())
def test_ids_are_sequential(case: tuple) -> None:
    r = split(case)
    assert [s.id for s in r.segments] == [f"c_{k}" for k in range(len(r.segments))]


@given(cases())
def test_every_turn_is_accounted_for_exactly_once(case: tuple) -> None:
    conv, counts, options = case
    r = split(case)
    k = n_system(conv)
    seen = [0] * len(conv.turns)
    for s, e in [*r.spans, *((d.start, d.end) for d in r.dropped)]:
        for i in range(s, e):
            seen[i] += 1
    if r.segments:
        seen[:k] = [1] * k
    assert seen == [1] * len(conv.turns)
    for d in r.dropped:
        assert d.reason in DROP_REASONS
        assert d.tokens == sum(counts[i] + options["turn_overhead"] for i in range(d.start, d.end))


@given(cases())
def test_spans_are_in_order_and_disjoint(case: tuple) -> None:
    r = split(case)
    ends = [e for _, e in r.spans]
    starts = [s for s, _ in r.spans]
    assert all(e <= s for e, s in zip(ends, starts[1:]))
