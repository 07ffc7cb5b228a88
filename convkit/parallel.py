"""An ordered, bounded parallel map over worker processes.

``multiprocessing.Pool.imap`` drains its input iterator in a feeder thread as fast as it can,
so a 600 MB dump would sit pickled in a queue. Here at most ``window`` tasks are in flight and
results come back in submission order, which keeps memory flat and output deterministic.
"""
from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int | None = None,
) -> Iterator[R]:
    """``map(func, items)`` on ``workers`` processes (in this process when ``workers`` is 1).

    Workers are started with ``spawn``: the tokenizers library deadlocks in a forked child once
    its thread pool has run in the parent, and spawn behaves the same on every platform.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield func(item)
        return
    window = window or workers * 3
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.apply_async(func, (item,)))
            if len(pending) >= window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
