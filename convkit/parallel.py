"""An ordered, bounded parallel map over worker processes.

``multiprocessing.Pool.imap`` drains its input iterator in a feeder thread as fast as it can,
so a 600 MB dump would sit pickled in a queue, and a ``Pool`` whose workers die at start-up
replaces them forever, so the run hangs. Here at most ``window`` tasks are in flight, results
come back in submission order (output is deterministic), and a worker that cannot start is an
error, through ``ProcessPoolExecutor``'s broken-pool detection.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from .errors import ConvkitError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
M = TypeVar("M")
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
    local_initargs: tuple[Any, ...] | None = None,
    window: int | None = None,
) -> Generator[tuple[T, R], None, None]:
    """``(item, func(item))`` for each item, in order, computed on ``workers`` processes: this
    one and ``workers - 1`` helpers (just this one when ``workers`` is 1). The item comes back
    too: it never left this process.

    This process works too: it hands an item to the helpers while they have fewer than two
    each in hand, and otherwise computes it itself. On two cores that is one process to start
    instead of two, and no core idles while the helpers start or while this process waits.
    Which process computed an item never changes its result, so the output is the same.

    Helpers are forked when that is safe, else spawned (see :func:`start_method`).
    ``initializer`` runs in each helper with ``initargs`` and here with ``local_initargs``
    (default: ``initargs``).
    """
    if initializer is not None:
        initializer(*(initargs if local_initargs is None else local_initargs))
    if workers <= 1:
        for item in items:
            yield item, func(item)
        return
    helpers = workers - 1
    window = window or workers * 8
    ctx = mp.get_context(start_method())
    pool = ProcessPoolExecutor(
        helpers, mp_context=ctx, initializer=_helper_start, initargs=(initializer, initargs)
    )
    pending: deque[tuple[T, Future[R] | _Local[R]]] = deque()
    try:
        widen_pipes(pool)
        for item in items:
            # Items handed to the helpers and not finished yet.
            in_hand = sum(1 for _, f in pending if isinstance(f, Future) and not f.done())
            if in_hand < 2 * helpers:
                pending.append((item, pool.submit(func, item)))
            else:
                try:
                    result = func(item)
                except Exception:
                    yield from _drain(pending, func)  # earlier items first, their errors too
                    raise
                pending.append((item, _Local(result)))
            while pending and (len(pending) >= window or pending[0][1].done()):
                done, result = pending.popleft()
                yield done, _result(func, done, result)
        yield from _drain(pending, func)
    except BrokenProcessPool as e:
        raise WorkerError(
            f"worker processes stopped unexpectedly ({e}); if a script calls convert() with "
            "several workers, it must do so under 'if __name__ == \"__main__\":' (helpers "
            "started by spawn import the script again), and a program read from standard "
            "input or typed in an interactive shell needs one worker (--workers 1)"
        ) from None
    finally:
        # After Ctrl-C or SIGTERM too, the helpers finish the batch in hand (the rest are
        # cancelled): killing one mid-answer leaves a part message in the result pipe, on
        # which the executor's thread then waits forever. A second Ctrl-C ends the wait.
        for _, f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def start_method() -> str:
    """``fork`` when this process runs one thread, on Linux; else ``spawn``.

    A forked helper starts in milliseconds, with every module imported; a spawned one starts
    a new interpreter and imports convkit again (about a quarter of a second). Fork is safe
    only while no other thread runs: one holding a lock at the fork (the tokenizers library's
    pool once it has counted, a thread of the calling program) leaves the child's copy locked
    for ever, and the tokenizers library deadlocks in a child forked after its pool ran. The
    executor forks its helpers at the first submit, before it starts a thread of its own."""
    if sys.platform.startswith("linux") and _threads() == 1:
        return "fork"
    return "spawn"


#: The buffer asked of the kernel for each pipe between this process and the helpers.
PIPE_BYTES = 1 << 20


def widen_pipes(pool: ProcessPoolExecutor) -> list[int]:
    """Give the pool's two pipes (tasks to the helpers, results back) a buffer of
    :data:`PIPE_BYTES` instead of Linux's default of 16 pages (64 KB on most machines);
    returns the sizes of the pipes widened.

    The executor's manager thread in this process reads every result from its pipe, a
    pipe-full per read call, and takes the GIL back from the converting thread between calls
    (a compiled conversion holds it for its whole message). With 64 KB, a batch's result of a
    megabyte or two took dozens of such turns while the helper, blocked on its write, idled:
    on the rendered corpus the helper idled about a third of the run.

    Best effort: the pipes are the executor's own attributes (``_call_queue`` and
    ``_result_queue``; ``F_SETPIPE_SZ`` exists on Linux, from Python 3.10), and the kernel may
    refuse (above ``/proc/sys/fs/pipe-max-size``, or once the user's pipe quota is spent):
    either leaves a pipe as it was. While a run lasts, its two pipes hold 512 pages of the
    user's quota (``/proc/sys/fs/pipe-user-pages-soft``, 16,384 by default).
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return []
    sizes = []
    for queue in (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None)):
        try:
            fd = queue._reader.fileno()  # type: ignore[union-attr]
            sizes.append(fcntl.fcntl(fd, set_size, PIPE_BYTES))
        except (AttributeError, OSError, ValueError):
            continue
    return sizes


def _threads() -> int:
    """Threads of this process, native ones included (the tokenizers library's pool)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _helper_start(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    """A helper's first step: leave the signals to the main process, leave when it is gone,
    then initialise.

    Ctrl-C in a terminal, ``timeout`` and systemd signal the whole process group: a helper
    killed by that SIGTERM (or interrupted by that SIGINT) broke the pool, and the run ended as
    a worker failure (exit 1) instead of as terminated (143). The main process handles both
    and stops the helpers itself. A helper waits for work on a queue; if the main process is
    killed (SIGKILL, an OOM kill) nothing would ever tell it, and it would stay, orphaned,
    holding its memory: it watches its parent."""
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    parent = mp.parent_process()
    if parent is not None:

        def watch() -> None:
            parent.join()  # returns when the parent's end of the sentinel pipe closes
            os._exit(1)

        threading.Thread(target=watch, name="convkit-parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


class _Local(Generic[R]):
    """A result computed in this process, queued in order with the helpers' futures."""

    __slots__ = ("value",)

    def __init__(self, value: R) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> R:
        return self.value

    def cancel(self) -> bool:
        return False


def overlapped_map(
    first: Callable[[T], M],
    second: Callable[[list[M]], list[R]],
    items: Iterable[T],
    *,
    ahead: int = 8,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Generator[tuple[T, R], None, None]:
    """``(item, result)`` for each item, in order, in this process: ``first`` on this thread,
    ``second`` on one background thread, which takes every item ``first`` has finished since
    it last looked, so ``second`` of earlier items runs while ``first`` of later ones does.
    ``second`` maps a list of ``first``'s results to as many results.

    Worth it when ``second`` spends its time outside the GIL (the tokenizer's batched encode,
    whose own threads then share the cores with this thread's HTML conversion). Handing it
    whatever has queued up, as soon as it is free, makes its calls few and large and leaves it
    no idle gap: each call of a thread-pooled encoder pays for starting and draining its
    threads, and 12 calls over a corpus cost a quarter more CPU than one. Once every item has
    come, the last goes alone (see :func:`_take`), so that what the caller does with the
    results of the others overlaps it. At most ``ahead`` items wait for ``second``. The
    earliest error of either stage is raised, after the results of the items before its group.
    """
    if initializer is not None:
        initializer(*initargs)
    line = _Handoff(second, ahead)
    try:
        for item in items:
            try:
                middle = first(item)
            except BaseException:
                line.close()  # earlier items come first, their errors too
                yield from line.results(wait=True)
                raise
            line.put(item, middle)
            yield from line.results(wait=False)
        line.close()
        yield from line.results(wait=True)
    finally:
        line.stop()


class _Handoff(Generic[T, M, R]):
    """The queue between :func:`overlapped_map`'s two stages, and the thread of the second."""

    def __init__(self, second: Callable[[list[M]], list[R]], ahead: int) -> None:
        self._second = second
        self._ahead = ahead
        self._cond = threading.Condition()
        self._queue: list[tuple[T, M]] = []
        self._done: deque[tuple[list[T], list[R] | None, BaseException | None]] = deque()
        self._closed = False  # no more items will come
        self._stopped = False  # the thread has ended (closed and drained, or an error)
        self._thread = threading.Thread(target=self._run, name="convkit-second", daemon=True)
        self._thread.start()

    def put(self, item: T, middle: M) -> None:
        with self._cond:
            while len(self._queue) >= self._ahead and not self._stopped:
                self._cond.wait()
            self._queue.append((item, middle))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def results(self, *, wait: bool) -> Iterator[tuple[T, R]]:
        """The finished groups' pairs, in order; with ``wait``, until the thread has ended."""
        while True:
            with self._cond:
                while wait and not self._done and not self._stopped:
                    self._cond.wait()
                if not self._done:
                    return
                group, results, error = self._done.popleft()
            if error is not None:
                raise error
            assert results is not None
            if len(results) != len(group):  # pragma: no cover - a broken second stage
                raise AssertionError(f"{len(results)} results for {len(group)} items")
            yield from zip(group, results)

    def stop(self) -> None:
        """End the thread: nothing more is taken (the group in hand is finished)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._queue and not self._closed:
                    cond.wait()
                if not self._queue:
                    self._stopped = True
                    cond.notify_all()
                    return
                taken, self._queue = _take(self._queue, self._closed)
                cond.notify_all()  # room for first to go on
            group = [item for item, _ in taken]
            try:
                out = (group, self._second([middle for _, middle in taken]), None)
            except BaseException as e:  # noqa: BLE001 - handed to the caller, in order
                out = (group, None, e)
            with cond:
                self._done.append(out)
                if out[2] is not None:
                    self._stopped = True
                cond.notify_all()
                if self._stopped:
                    return


def _take(queue: list[Any], closed: bool) -> tuple[list[Any], list[Any]]:
    """What the second stage takes of ``queue`` (and what it leaves): everything, except that
    once every item has come (``closed``) the last one is left to go alone. Its group's result
    is the only one whose handling waits for the second stage to finish: the caller handles
    the rest's results while the second stage works on it."""
    if closed and len(queue) > 1:
        return queue[:-1], queue[-1:]
    return queue, []


def _drain(pending: deque[tuple[T, Any]], func: Callable[[T], Any]) -> Iterator[tuple[T, Any]]:
    """Each pending ``(item, future)`` as ``(item, result)``, in order; raises the first error."""
    while pending:
        done, future = pending.popleft()
        yield done, _result(func, done, future)


def _result(func: Callable[[T], R], item: T, future: Any) -> R:
    """The future's result; an item that could not travel to a helper is computed here.

    Pickling recurses once a level of nesting: a record nested some 500 levels deep (which the
    readers take, up to about 2,000) cannot be sent, and the executor hands the pickling error
    back through the item's future. Which process computes an item never changes its result."""
    try:
        return future.result()
    except (RecursionError, pickle.PicklingError):
        if isinstance(future, _Local):
            raise
        return func(item)
