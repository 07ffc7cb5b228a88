"""The compiled core of the splitter: segment boundaries from per-turn costs.

Plain data only crosses this boundary: an int64 buffer of costs and a uint8 buffer of start flags
go in, an int64 array of ``start, end, cost, oversize`` records comes out. The ``def`` wrapper
converts and validates with the GIL; both loops over the turns run without it. Compiler
directives live in setup.py. ``convkit/_fastsplit_py.py`` is the pure-Python twin: same rules,
same messages.
"""
from cpython.array cimport array as c_array, clone, resize
from libc.stdint cimport INT64_MAX, int64_t, uint8_t

from array import array
from operator import index

__all__ = ["plan"]

# Output records are four int64 words: start, end, cost, oversize flag.
cdef enum:
    _WORDS = 4

cdef c_array _INT64_TEMPLATE = array("q")


cdef object _as_costs(object costs):
    # Same conversion as the twin: array("q") is read in place, anything else is converted once.
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


cdef object _as_starts(object starts):
    if type(starts) is bytes or type(starts) is bytearray:
        return starts
    return bytes(list(starts))


cdef Py_ssize_t _pack(
    const int64_t[::1] costs, const uint8_t[::1] starts, int64_t budget, int64_t[::1] out
) except -1 nogil:
    """Greedy packing of whole units; returns the number of segments written to ``out``.

    Callers guarantee: costs non-negative with a sum within int64 (so no sum below overflows),
    starts[0] != 0, and room in ``out`` for one record per unit.
    """
    cdef Py_ssize_t n = costs.shape[0]
    cdef Py_ssize_t i = 0, k = 0, u_start, seg_start = -1
    cdef int64_t u_cost, seg_cost = 0
    cdef bint seg_flag = False
    while i < n:
        u_start = i
        u_cost = costs[i]
        i += 1
        while i < n and starts[i] == 0:
            u_cost += costs[i]
            i += 1
        # A flagged segment holds its one oversize unit and nothing else.
        if seg_start >= 0 and not seg_flag and u_cost <= budget - seg_cost:
            seg_cost += u_cost
        else:
            if seg_start >= 0:
                out[k] = seg_start
                out[k + 1] = u_start
                out[k + 2] = seg_cost
                out[k + 3] = seg_flag
                k += _WORDS
            seg_start = u_start
            seg_cost = u_cost
            seg_flag = u_cost > budget
    out[k] = seg_start
    out[k + 1] = n
    out[k + 2] = seg_cost
    out[k + 3] = seg_flag
    k += _WORDS
    return k // _WORDS


def plan(costs, starts, budget):
    """Pack units of turns greedily into segments that fit ``budget``.

    ``costs[i]`` is the cost of turn i (an ``array("q")`` is read in place; other sequences of
    ints are converted); ``starts[i]`` is non-zero where a unit begins (``bytes`` is read in
    place), a unit running from one start to just before the next. Returns a flat
    ``array("q")`` of four words per segment, in order: ``start, end, cost, oversize`` -- turns
    ``[start, end)``, their total cost, and 1 when it is a single unit whose cost alone exceeds
    ``budget`` (else 0). Segments are never empty and cover every unit exactly once.
    """
    cdef const int64_t[::1] cv
    cdef const uint8_t[::1] sv
    cdef int64_t[::1] ov
    cdef int64_t c_budget, c, total = 0
    cdef Py_ssize_t n, i, n_units = 0, n_segments, negative_at = -1
    cdef bint overflow = False

    budget = index(budget)
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    # Costs sum to at most INT64_MAX (checked below), so a larger budget means the same thing.
    c_budget = INT64_MAX if budget > INT64_MAX else budget
    cv = _as_costs(costs)
    sv = _as_starts(starts)
    n = cv.shape[0]
    if n != sv.shape[0]:
        raise ValueError(f"costs and starts must have the same length, got {n} and {sv.shape[0]}")
    if n == 0:
        return array("q")
    if sv[0] == 0:
        raise ValueError("starts[0] must be non-zero: the first turn must begin a unit")

    with nogil:
        for i in range(n):
            c = cv[i]
            if c < 0:
                negative_at = i
                break
            if sv[i] != 0:
                n_units += 1
            if not overflow:
                if c > INT64_MAX - total:
                    overflow = True
                else:
                    total += c
    if negative_at >= 0:
        raise ValueError(
            f"costs must be non-negative, got {cv[negative_at]} at index {negative_at}"
        )
    if overflow:
        raise ValueError("the sum of costs exceeds the int64 range")

    out = clone(_INT64_TEMPLATE, n_units * _WORDS, False)
    ov = out
    with nogil:
        n_segments = _pack(cv, sv, c_budget, ov)
    # A flat int64 array, not a list of tuples: building 3 ints and a tuple per segment would
    # cost ten times the packing itself on large inputs.
    resize(out, n_segments * _WORDS)
    return out
