"""Type stubs of the compiled splitter core (see ``_fastsplit_py.py``, its pure-Python twin)."""

from array import array
from collections.abc import Iterable
from typing import SupportsIndex

__all__ = ["plan"]

def plan(costs: Iterable[int], starts: Iterable[int], budget: SupportsIndex) -> array[int]:
    """Pack units of turns greedily into segments that fit ``budget``.

    Returns a flat ``array("q")``: ``start, end, cost, oversize`` (0 or 1) per segment, in order.
    """
