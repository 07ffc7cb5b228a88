"""The ordered parallel map: order, who computes what, and failures."""

from __future__ import annotations

import os
import time

import pytest

from convkit.parallel import WorkerError, ordered_map

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


def test_a_helper_that_dies_is_a_worker_error(monkeypatch):
    monkeypatch.setenv("CONVKIT_TEST_MAIN_PID", str(os.getpid()))  # the helper inherits it
    with pytest.raises(WorkerError, match=r"^worker processes stopped unexpectedly \("):
        list(ordered_map(die_in_a_helper, range(6), workers=2))


def test_an_error_computed_here_propagates():
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match=r"^bad 0$"):
        list(ordered_map(boom, range(3), workers=1))
