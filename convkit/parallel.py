"""An ordered, bounded parallel map over worker processes.

``multiprocessing.Pool.imap`` drains its input iterator in a feeder thread as fast as it can,
so a 600 MB dump would sit pickled in a queue, and a ``Pool`` whose workers die at start-up
replaces them forever, so the run hangs. Here at most ``window`` tasks are in flight, results
come back in submission order (output is deterministic), and a worker that cannot start is an
error, through ``ProcessPoolExecutor``'s broken-pool detection.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .errors import ConvkitError

T = TypeVar("T")
R = TypeVar("R")


class WorkerError(ConvkitError):
    """Worker processes could not run (they died, or could not start)."""


def ordered_map(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int | None = None,
) -> Iterator[tuple[T, R]]:
    """``(item, func(item))`` for each item, in order, computed on ``workers`` processes (in
    this process when ``workers`` is 1). The item comes back too: it never left this process.

    Workers are started with ``spawn``: the tokenizers library deadlocks in a forked child once
    its thread pool has run in the parent, and spawn behaves the same on every platform.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield item, func(item)
        return
    window = window or workers * 3
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs)
    pending: deque[tuple[T, Future[R]]] = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(func, item)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    except BrokenProcessPool as e:
        raise WorkerError(
            f"worker processes stopped unexpectedly ({e}); if the program runs from standard "
            "input or an interactive shell, use one worker (--workers 1)"
        ) from None
    finally:
        for _, f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
