"""The packing core: exact outputs and exact errors, for the compiled core and its twin alike.

``CONVKIT_REQUIRE_EXT=1`` (set in CI) turns a missing extension into a failure instead of a skip.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable

import pytest

from convkit import _fastsplit_py

REQUIRE_EXT = os.environ.get("CONVKIT_REQUIRE_EXT", "") not in ("", "0")

try:
    from convkit import _fastsplit
except ImportError as e:
    _fastsplit = None
    _IMPORT_ERROR = str(e)

INT64_MAX = 2**63 - 1

Plan = Callable[..., array]


def compiled_plan() -> Plan:
    """The compiled ``plan``; skips without the extension, or fails under CONVKIT_REQUIRE_EXT=1."""
    if _fastsplit is None:
        if REQUIRE_EXT:
            pytest.fail(
                f"CONVKIT_REQUIRE_EXT=1 but convkit._fastsplit is not built: {_IMPORT_ERROR}"
            )
        pytest.skip(f"convkit._fastsplit is not built ({_IMPORT_ERROR})")
    return _fastsplit.plan


@pytest.fixture(params=["python", "cython"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return _fastsplit_py.plan if request.param == "python" else compiled_plan()


def records(out: array) -> list[tuple[int, ...]]:
    """``(start, end, cost, oversize)`` per segment, from the flat array ``plan`` returns."""
    assert type(out) is array and out.typecode == "q" and len(out) % 4 == 0
    return [tuple(out[i : i + 4]) for i in range(0, len(out), 4)]


def test_extension_is_built() -> None:
    compiled_plan()


def test_compiled_module_ships_its_docstring_and_signature() -> None:
    doc = compiled_plan().__doc__
    assert doc is not None
    assert doc.startswith("plan(costs, starts, budget)\n\nPack units of turns greedily")


# --- results -----------------------------------------------------------------------------------


def test_units_are_packed_greedily(plan: Plan) -> None:
    assert records(plan([3, 4, 5, 6, 1, 1], [1, 0, 1, 0, 1, 0], 13)) == [
        (0, 2, 7, 0),
        (2, 6, 13, 0),
    ]


def test_unit_over_budget_is_alone_and_flagged(plan: Plan) -> None:
    assert records(plan([1, 1, 9, 9, 1, 1], [1, 0, 1, 0, 1, 0], 10)) == [
        (0, 2, 2, 0),
        (2, 4, 18, 1),
        (4, 6, 2, 0),
    ]


def test_unit_exactly_at_budget_is_not_flagged(plan: Plan) -> None:
    assert records(plan([4, 6], [1, 0], 10)) == [(0, 2, 10, 0)]


def test_every_unit_over_budget(plan: Plan) -> None:
    assert records(plan([5, 5, 5], [1, 1, 1], 4)) == [(0, 1, 5, 1), (1, 2, 5, 1), (2, 3, 5, 1)]


def test_zero_budget_holds_zero_cost_units(plan: Plan) -> None:
    assert records(plan([0, 0, 1, 0], [1, 1, 1, 1], 0)) == [
        (0, 2, 0, 0),
        (2, 3, 1, 1),
        (3, 4, 0, 0),
    ]


def test_empty_input_gives_no_segment(plan: Plan) -> None:
    assert records(plan([], b"", 10)) == []


def test_any_non_zero_flag_starts_a_unit(plan: Plan) -> None:
    assert records(plan([5, 5, 5], bytes([1, 0, 255]), 5)) == [(0, 2, 10, 1), (2, 3, 5, 0)]


@pytest.mark.parametrize(
    ("costs", "starts"),
    [
        (array("q", [2, 2, 2]), b"\x01\x00\x01"),
        ([2, 2, 2], bytearray(b"\x01\x00\x01")),
        ((2, 2, 2), [True, False, True]),
        (array("l", [2, 2, 2]), array("B", [1, 0, 1])),
    ],
)
def test_accepted_input_types(plan: Plan, costs: object, starts: object) -> None:
    assert records(plan(costs, starts, 4)) == [(0, 2, 4, 0), (2, 3, 2, 0)]


def test_budget_beyond_int64_means_no_limit(plan: Plan) -> None:
    assert records(plan([INT64_MAX - 1, 1], [1, 1], 2**70)) == [(0, 2, INT64_MAX, 0)]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("costs", "starts", "budget", "error", "message"),
    [
        ([1], [1], -1, ValueError, "budget must be >= 0, got -1"),
        ([1], [1], 2.0, TypeError, "'float' object cannot be interpreted as an integer"),
        ([1, 2], [1], 5, ValueError, "costs and starts must have the same length, got 2 and 1"),
        (
            [1, 2],
            [0, 1],
            5,
            ValueError,
            "starts[0] must be non-zero: the first turn must begin a unit",
        ),
        ([1, -2, -3], [1, 0, 0], 5, ValueError, "costs must be non-negative, got -2 at index 1"),
        (
            [INT64_MAX, 1, -1],
            [1, 0, 0],
            5,
            ValueError,
            "costs must be non-negative, got -1 at index 2",
        ),
        ([INT64_MAX, 1], [1, 1], 5, ValueError, "the sum of costs exceeds the int64 range"),
        ([1, 2**63], [1, 0], 5, ValueError, f"costs must fit in int64, got {2**63} at index 1"),
        (
            (-(2**63) - 1,),
            [1],
            5,
            ValueError,
            f"costs must fit in int64, got {-(2**63) - 1} at index 0",
        ),
        (b"\x01", [1], 5, TypeError, "costs must be a sequence of integers, got bytes"),
        ("1", [1], 5, TypeError, "costs must be a sequence of integers, got str"),
        ([1], [256], 5, ValueError, "bytes must be in range(0, 256)"),
        ([1], 1, 5, TypeError, "'int' object is not iterable"),
    ],
)
def test_invalid_input_error(
    plan: Plan, costs: object, starts: object, budget: object, error: type, message: str
) -> None:
    with pytest.raises(error) as e:
        plan(costs, starts, budget)
    assert str(e.value) == message
