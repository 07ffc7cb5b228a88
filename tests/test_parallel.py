"""The ordered parallel map: order, who computes what, and failures."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from convkit.parallel import PIPE_BYTES, WorkerError, ordered_map, overlapped_map, widen_pipes

_initialised: list[tuple[str, ...]] = []


def square_and_pid(x: int) -> tuple[int, int]:
    time.sleep(0.002)
    return x * x, os.getpid()


def remember(*args: str) -> None:
    _initialised.append(args)


def die_in_a_helper(x: int) -> int:
    if os.getpid() != int(os.environ["CONVKIT_TEST_MAIN_PID"]):
        os._exit(3)
    return x


def test_one_worker_runs_here_in_order():
    got = list(ordered_map(square_and_pid, range(5), workers=1))
    assert [(i, r[0]) for i, r in got] == [(i, i * i) for i in range(5)]
    assert {r[1] for _, r in got} == {os.getpid()}


def test_two_workers_keep_the_order_and_this_process_works_too():
    _initialised.clear()
    got = list(
        ordered_map(
            square_and_pid,
            range(300),
            workers=2,
            initializer=remember,
            initargs=("helper",),
            local_initargs=("here",),
        )
    )
    assert [(i, r[0]) for i, r in got] == [(i, i * i) for i in range(300)]
    pids = {r[1] for _, r in got}
    # While the helper starts, this process computes; then both do.
    assert os.getpid() in pids
    assert len(pids) == 2
    assert _initialised == [("here",)]  # the helper's initializer ran in the helper


def depth_and_pid(item: tuple[int, list]) -> tuple[int, int]:
    time.sleep(0.002)
    depth, node = 0, item[1]
    while node:
        depth, node = depth + 1, node[0]
    return depth, os.getpid()


def test_an_item_too_deep_to_pickle_is_computed_here_with_the_same_result():
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    items = [(i, deep if i % 5 == 0 else [[]]) for i in range(200)]
    got = list(ordered_map(depth_and_pid, items, workers=2))
    assert [r[0] for _, r in got] == [3000 if i % 5 == 0 else 1 for i in range(200)]
    # Every deep item stayed here: pickling it for the helper failed.
    assert {r[1] for (i, _), r in got if i % 5 == 0} == {os.getpid()}


def test_a_helper_that_dies_is_a_worker_error(monkeypatch):
    monkeypatch.setenv("CONVKIT_TEST_MAIN_PID", str(os.getpid()))  # the helper inherits it
    with pytest.raises(WorkerError, match=r"^worker processes stopped unexpectedly \("):
        list(ordered_map(die_in_a_helper, range(6), workers=2))


def test_an_error_computed_here_propagates():
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match=r"^bad 0$"):
        list(ordered_map(boom, range(3), workers=1))


def each(f):
    """A second stage for overlapped_map from a function of one item."""
    return lambda group: [f(m) for m in group]


def test_overlapped_map_keeps_the_order_and_runs_the_second_stage_on_another_thread():
    import threading

    here = threading.get_ident()
    seen: list[int] = []

    def second(x: int) -> int:
        seen.append(threading.get_ident())
        return x + 1

    got = list(overlapped_map(lambda x: x * 10, each(second), range(5)))
    assert got == [(i, i * 10 + 1) for i in range(5)]
    assert here not in seen and len(set(seen)) == 1


def test_overlapped_map_hands_the_second_stage_what_queued_up_at_most_ahead_items():
    import threading

    started, go = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    def first(x: int) -> int:
        if x == 1:
            assert started.wait(10)  # the second stage has taken item 0 alone
        if x == 4:
            go.set()  # items 1, 2 and 3 wait meanwhile; item 4 must wait for room
        return x

    def second(group: list[int]) -> list[int]:
        groups.append(group)
        started.set()
        assert go.wait(10)
        return [m * 2 for m in group]

    got = list(overlapped_map(first, second, range(5), ahead=3))
    assert got == [(i, i * 2) for i in range(5)]
    assert groups == [[0], [1, 2, 3], [4]]


def test_overlapped_map_raises_errors_of_either_stage_in_order():
    def second(x: int) -> int:
        if x == 20:
            raise ValueError("second failed on 20")
        return x

    out = []
    with pytest.raises(ValueError, match=r"^second failed on 20$"):
        for item, r in overlapped_map(lambda x: x * 10, each(second), range(5), ahead=1):
            out.append((item, r))
    assert out == [(0, 0), (1, 10)]

    def first(x: int) -> int:
        if x == 3:
            raise KeyError(x)
        return x

    out = []
    with pytest.raises(KeyError):
        for item, _ in overlapped_map(first, each(lambda m: m), range(5)):
            out.append(item)
    assert out == [0, 1, 2]  # the items before item 3, still queued when it failed, came first


def test_overlapped_map_raises_the_earlier_items_error_first():
    def first(x: int) -> int:
        if x == 2:
            raise KeyError("first failed on 2")
        return x

    def second(x: int) -> int:
        if x == 1:
            raise ValueError("second failed on 1")
        return x

    out = []
    with pytest.raises(ValueError, match=r"^second failed on 1$"):
        for item, _ in overlapped_map(first, each(second), range(5), ahead=1):
            out.append(item)
    assert out == [0]


def test_overlapped_map_does_not_hang_when_the_second_stage_fails_with_items_waiting():
    def second(group: list[int]) -> list[int]:
        raise ValueError(f"second failed on {group}")

    with pytest.raises(ValueError, match=r"^second failed on \[0\]$"):
        list(overlapped_map(lambda x: x, second, range(50), ahead=1))


def test_overlapped_map_ends_its_thread_when_the_caller_stops_early():
    import threading

    it = overlapped_map(lambda x: x, each(lambda m: m), range(100), ahead=2)
    assert next(it) == (0, 0)
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "convkit-second"]


def fail_on_big(x: int) -> int:
    if x >= 4:
        raise ValueError(f"failed on {x}")
    time.sleep(0.05)
    return x


def test_ordered_map_yields_earlier_results_before_an_error_computed_here():
    # Items 0 and 1 go to the helper; 2 and 3 wait for it; item 4 fails here. Items 0-3 come
    # out first, in order.
    out = []
    with pytest.raises(ValueError, match=r"^failed on 4$"):
        for item, r in ordered_map(fail_on_big, range(6), workers=2, window=100):
            out.append((item, r))
    assert out == [(i, i) for i in range(len(out))]
    assert out[:2] == [(0, 0), (1, 1)]


_ORPHAN_SCRIPT = """
import os, sys, time
from convkit.parallel import ordered_map

def slow(x):
    time.sleep(0.2)
    return os.getpid()

if __name__ == "__main__":
    for _, pid in ordered_map(slow, range(1000), workers=2):
        if pid != os.getpid():
            print(pid, flush=True)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to watch the helper")
def test_a_helper_leaves_when_the_main_process_is_killed(tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    main = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    with main.stdout:
        helper = int(main.stdout.readline())
        os.kill(main.pid, signal.SIGKILL)
        main.wait()
    deadline = time.monotonic() + 20
    while _running(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(helper)


_START_SCRIPT = """
import threading
from convkit.parallel import start_method

alone = start_method()
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
print(alone, start_method())
stop.set()
other.join()
from tokenizers import Tokenizer
Tokenizer.from_file({tokenizer!r}).encode_batch(["a few words"] * 1000)
print(start_method())
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="fork is chosen on Linux only")
def test_helpers_are_forked_only_while_this_process_runs_one_thread():
    import subprocess
    import sys
    from pathlib import Path

    tokenizer = str(Path(__file__).parent.parent / "examples" / "tokenizer.json")
    code = _START_SCRIPT.format(tokenizer=tokenizer)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    # The tokenizers library's pool, once it has counted, stays: fork is never safe again.
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "fork spawn\nspawn\n")


_UNGUARDED_SCRIPT = """
import threading
from convkit.parallel import ordered_map

# A thread of the program's own: helpers are spawned, and each imports this script again.
threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
print(list(ordered_map(abs, range(8), workers=2)))
"""


def test_an_unguarded_script_is_told_about_the_main_guard(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=120
    )
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1
    assert last.startswith(
        "convkit.parallel.WorkerError: worker processes stopped unexpectedly ("
    )
    assert last.endswith(
        "); if a script calls convert() with several workers, it must do so under "
        "'if __name__ == \"__main__\":' (helpers started by spawn import the script again), "
        "and a program read from standard input or typed in an interactive shell needs one "
        "worker (--workers 1)"
    )


def test_the_progress_bar_starts_no_thread(monkeypatch):
    # A terminal's progress bar must not cost the forked helpers (see start_method).
    import io
    import sys

    from convkit import parallel, pipeline

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    before = parallel._threads()
    bar = pipeline._progress(True, ["in.json"])
    try:
        assert bar is not None
        assert parallel._threads() == before
    finally:
        bar.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are Linux's")
def test_the_pipes_to_the_helpers_are_widened():
    import fcntl

    with open("/proc/sys/fs/pipe-max-size") as f:
        if int(f.read()) < PIPE_BYTES:
            pytest.skip("this kernel allows pipes of less than PIPE_BYTES")
    pool = ProcessPoolExecutor(1)
    try:
        assert widen_pipes(pool) == [PIPE_BYTES, PIPE_BYTES]
        for queue in (pool._call_queue, pool._result_queue):
            for end in (queue._reader, queue._writer):
                assert fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
        assert pool.submit(abs, -3).result() == 3
    finally:
        pool.shutdown()


def test_widening_is_best_effort(tmp_path):
    class Closed:
        def fileno(self):
            raise ValueError("closed")

    class Queue:
        def __init__(self, reader):
            self._reader = reader

    class Pool:  # an executor of another Python, whose pipes are not what they were
        def __init__(self, call, result):
            self._call_queue, self._result_queue = call, result

    with open(tmp_path / "f", "wb") as f:  # not a pipe: the kernel refuses (EBADF)
        assert widen_pipes(Pool(Queue(f), Queue(Closed()))) == []
    assert widen_pipes(Pool(Queue(object()), None)) == []
    assert widen_pipes(object()) == []


def test_ordered_map_widens_the_pool_it_starts(monkeypatch):
    from convkit import parallel

    widened = []
    monkeypatch.setattr(parallel, "widen_pipes", widened.append)
    got = list(ordered_map(square_and_pid, range(20), workers=2))
    assert [r[0] for _, r in got] == [i * i for i in range(20)]
    assert [type(p).__name__ for p in widened] == ["ProcessPoolExecutor"]
    assert len(list(ordered_map(square_and_pid, range(3), workers=1))) == 3
    assert len(widened) == 1  # one process: no pool


def test_once_every_item_has_come_the_last_goes_to_the_second_stage_alone():
    from convkit.parallel import _take

    assert _take([1, 2, 3], closed=False) == ([1, 2, 3], [])
    assert _take([1, 2, 3], closed=True) == ([1, 2], [3])
    assert _take([3], closed=True) == ([3], [])
    assert _take([], closed=True) == ([], [])
