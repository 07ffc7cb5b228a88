"""Properties of the packing core, and agreement of the compiled core with its pure-Python twin.

The twin is the oracle: on any input, valid or not, the compiled ``plan`` returns the same
segments or raises the same error. ``CONVKIT_REQUIRE_EXT=1`` (set in CI) makes the agreement tests
fail, not skip, when the extension is not built.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convkit import _fastsplit_py

REQUIRE_EXT = os.environ.get("CONVKIT_REQUIRE_EXT", "") not in ("", "0")

try:
    from convkit import _fastsplit
except ImportError as e:
    _fastsplit = None
    _IMPORT_ERROR = str(e)

Plan = Callable[..., array]
INT64_MAX = 2**63 - 1


def compiled_plan() -> Plan:
    """The compiled ``plan``; skips without the extension, or fails under CONVKIT_REQUIRE_EXT=1."""
    if _fastsplit is None:
        if REQUIRE_EXT:
            pytest.fail(
                f"CONVKIT_REQUIRE_EXT=1 but convkit._fastsplit is not built: {_IMPORT_ERROR}"
            )
        pytest.skip(f"convkit._fastsplit is not built ({_IMPORT_ERROR})")
    return _fastsplit.plan


@st.composite
def valid_inputs(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    """Costs, start flags (the first set) and a budget; costs mostly small so that packing bites."""
    n = draw(st.integers(0, 60))
    big = draw(st.booleans())
    cost = st.integers(0, 2**40) if big else st.integers(0, 30)
    costs = draw(st.lists(cost, min_size=n, max_size=n))
    starts = draw(st.lists(st.sampled_from([0, 0, 1, 2, 255]), min_size=n, max_size=n))
    if n:
        starts[0] = draw(st.integers(1, 255))
    budget = draw(st.integers(0, 100) | st.integers(0, 2**64))
    return costs, starts, budget


@st.composite
def any_inputs(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    """Valid inputs with, sometimes, one thing broken (sign, length, first flag, overflow)."""
    costs, starts, budget = draw(valid_inputs())
    fault = draw(
        st.sampled_from(["none"] * 5 + ["negative", "length", "first", "overflow", "budget"])
    )
    if fault == "negative" and costs:
        costs[draw(st.integers(0, len(costs) - 1))] = draw(st.integers(-(2**63), -1))
    elif fault == "length":
        starts.append(1)
    elif fault == "first" and starts:
        starts[0] = 0
    elif fault == "overflow" and costs:
        costs[draw(st.integers(0, len(costs) - 1))] = INT64_MAX
        costs.append(1)
        starts.append(draw(st.sampled_from([0, 1])))
    elif fault == "budget":
        budget = draw(st.integers(-(2**70), -1))
    return costs, starts, budget


def records(out: array) -> list[tuple[int, ...]]:
    """``(start, end, cost, oversize)`` per segment, from the flat array ``plan`` returns."""
    assert type(out) is array and out.typecode == "q" and len(out) % 4 == 0
    return [tuple(out[i : i + 4]) for i in range(0, len(out), 4)]


def outcome(plan: Plan, costs: list[int], starts: list[int], budget: int) -> object:
    try:
        return records(plan(costs, starts, budget))
    except (ValueError, TypeError) as e:
        return (type(e), str(e))


def get_plan(backend: str) -> Plan:
    return _fastsplit_py.plan if backend == "python" else compiled_plan()


# A parameter, not a fixture: hypothesis runs many inputs per test call.
both_backends = pytest.mark.parametrize("backend", ["python", "cython"])


# --- compiled == twin --------------------------------------------------------------------------


@settings(max_examples=1000)
@given(any_inputs())
def test_compiled_agrees_with_twin(args: tuple[list[int], list[int], int]) -> None:
    compiled = compiled_plan()
    assert outcome(compiled, *args) == outcome(_fastsplit_py.plan, *args)


@settings(max_examples=500)
@given(valid_inputs())
def test_compiled_agrees_with_twin_on_bytes_and_arrays(
    args: tuple[list[int], list[int], int],
) -> None:
    costs, starts, budget = args
    compiled = compiled_plan()
    fast_args = (array("q", costs), bytes(starts), budget)
    assert compiled(*fast_args) == _fastsplit_py.plan(costs, starts, budget)  # array == array


# --- properties, on both -----------------------------------------------------------------------
# Each property is its own test, on the same generated inputs (hypothesis' database replays them).


def units(starts: list[int]) -> list[tuple[int, int]]:
    bounds = [i for i, s in enumerate(starts) if s] + [len(starts)]
    return list(zip(bounds, bounds[1:]))


@both_backends
@given(valid_inputs())
def test_no_segment_over_budget_unless_flagged(
    backend: str, args: tuple[list[int], list[int], int]
) -> None:
    costs, starts, budget = args
    for _, _, cost, flag in records(get_plan(backend)(*args)):
        assert flag or cost <= budget


@both_backends
@given(valid_inputs())
def test_no_empty_segment(backend: str, args: tuple[list[int], list[int], int]) -> None:
    assert all(start < end for start, end, _, _ in records(get_plan(backend)(*args)))


@both_backends
@given(valid_inputs())
def test_every_unit_is_covered_once_in_order(
    backend: str, args: tuple[list[int], list[int], int]
) -> None:
    costs, starts, budget = args
    segments = records(get_plan(backend)(*args))
    covered = [u for s, e, _, _ in segments for u in units(starts) if s <= u[0] and u[1] <= e]
    assert covered == units(starts)
    assert [s for s, _, _, _ in segments[1:]] == [e for _, e, _, _ in segments[:-1]]


@both_backends
@given(valid_inputs())
def test_segments_start_and_end_at_unit_bounds(
    backend: str, args: tuple[list[int], list[int], int]
) -> None:
    costs, starts, budget = args
    for start, end, _, _ in records(get_plan(backend)(*args)):
        assert starts[start] != 0
        assert end == len(starts) or starts[end] != 0


@both_backends
@given(valid_inputs())
def test_segment_cost_is_the_sum_of_its_turns(
    backend: str, args: tuple[list[int], list[int], int]
) -> None:
    costs, starts, budget = args
    assert all(cost == sum(costs[s:e]) for s, e, cost, _ in records(get_plan(backend)(*args)))


@both_backends
@given(valid_inputs())
def test_flagged_iff_a_unit_alone_over_budget(
    backend: str, args: tuple[list[int], list[int], int]
) -> None:
    costs, starts, budget = args
    oversize = {(s, e) for s, e in units(starts) if sum(costs[s:e]) > budget}
    flagged = {(s, e) for s, e, _, flag in records(get_plan(backend)(*args)) if flag}
    assert flagged == oversize


@both_backends
@given(valid_inputs())
def test_packing_is_greedy(backend: str, args: tuple[list[int], list[int], int]) -> None:
    # A segment closes only when the next unit does not fit in it.
    costs, starts, budget = args
    segments = records(get_plan(backend)(*args))
    for (_, _, cost, flag), (s2, _, _, flag2) in zip(segments, segments[1:]):
        next_unit = next(u for u in units(starts) if u[0] == s2)
        assert flag or flag2 or cost + sum(costs[next_unit[0] : next_unit[1]]) > budget
