"""Pure-Python twin of :mod:`convkit._fastsplit`: the same API, results and error messages.

It is the fallback when the extension is not built (or ``CONVKIT_PUREPYTHON=1``) and the oracle
the property tests compare the compiled core against. Keep the two files in step: every rule and
message here has its counterpart in ``_fastsplit.pyx``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import accumulate
from operator import index
from typing import SupportsIndex

__all__ = ["plan"]

INT64_MAX = 2**63 - 1


def _as_costs(costs: Iterable[int]) -> array[int]:
    # array("q") is the int64 buffer the compiled core reads without copying; anything else is
    # converted once. bytes would be reinterpreted as raw machine words by array(), so refuse it.
    if type(costs) is array and costs.typecode == "q":
        return costs
    if isinstance(costs, (bytes, bytearray, str)):
        raise TypeError(f"costs must be a sequence of integers, got {type(costs).__name__}")
    if not isinstance(costs, (list, tuple)):
        costs = list(costs)
    try:
        return array("q", costs)
    except OverflowError:
        # CPython's own message varies between versions; say which value, like the other errors.
        i = next(i for i, c in enumerate(costs) if not -INT64_MAX - 1 <= c <= INT64_MAX)
        raise ValueError(f"costs must fit in int64, got {costs[i]} at index {i}") from None


def _as_starts(starts: Iterable[int]) -> bytes | bytearray:
    # bytes(x) of an int or of an int64 array would silently mean something else: go through list.
    if type(starts) is bytes or type(starts) is bytearray:
        return starts
    return bytes(list(starts))


def plan(costs: Iterable[int], starts: Iterable[int], budget: SupportsIndex) -> array[int]:
    """Pack units of turns greedily into segments that fit ``budget``.

    ``costs[i]`` is the cost of turn i (an ``array("q")`` is read in place; other sequences of
    ints are converted); ``starts[i]`` is non-zero where a unit begins (``bytes`` is read in
    place), a unit running from one start to just before the next. Returns a flat
    ``array("q")`` of four words per segment, in order: ``start, end, cost, oversize`` -- turns
    ``[start, end)``, their total cost, and 1 when it is a single unit whose cost alone exceeds
    ``budget`` (else 0). Segments are never empty and cover every unit exactly once.
    """
    budget = index(budget)
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    costs = _as_costs(costs)
    starts = _as_starts(starts)
    n = len(costs)
    if n != len(starts):
        raise ValueError(f"costs and starts must have the same length, got {n} and {len(starts)}")
    if n == 0:
        return array("q")
    if not starts[0]:
        raise ValueError("starts[0] must be non-zero: the first turn must begin a unit")
    if min(costs) < 0:
        i = next(i for i, c in enumerate(costs) if c < 0)
        raise ValueError(f"costs must be non-negative, got {costs[i]} at index {i}")
    prefix = [0, *accumulate(costs)]
    if prefix[-1] > INT64_MAX:
        raise ValueError("the sum of costs exceeds the int64 range")

    unit_starts = [i for i, s in enumerate(starts) if s]
    unit_starts.append(n)
    out: list[int] = []
    seg_start = -1
    seg_cost = 0
    seg_flag = False
    for u in range(len(unit_starts) - 1):
        u_start = unit_starts[u]
        u_cost = prefix[unit_starts[u + 1]] - prefix[u_start]
        # A flagged segment holds its one oversize unit and nothing else.
        if seg_start >= 0 and not seg_flag and u_cost <= budget - seg_cost:
            seg_cost += u_cost
        else:
            if seg_start >= 0:
                out += (seg_start, u_start, seg_cost, seg_flag)
            seg_start = u_start
            seg_cost = u_cost
            seg_flag = u_cost > budget
    out += (seg_start, n, seg_cost, seg_flag)
    return array("q", out)
