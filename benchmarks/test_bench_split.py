"""Group ``split``: the packing core (compiled ``plan`` and its pure-Python twin) on 100k turns,
and ``split_conversation`` / FastChat's rule on a thousand conversations."""

from __future__ import annotations

import random
from array import array

import pytest

import convkit.split
from convkit import Conversation, Turn
from convkit._fastsplit_py import plan as py_plan
from convkit.split import fastchat_boundaries, split_conversation

try:
    from convkit._fastsplit import plan as c_plan
except ImportError:  # extension not built
    c_plan = None

BACKENDS = {"cython": c_plan, "python": py_plan}
N_TURNS = 100_000
N_CONVS = 1_000
BUDGET = 2048


def _turn_costs(n: int, seed: int = 0) -> tuple[array, bytes]:
    """Token costs shaped like chat turns (short questions, long-tailed answers) and the start
    flags of exchanges: mostly user + assistant, sometimes with tool turns between."""
    r = random.Random(seed)
    costs, starts = array("q"), bytearray()
    while len(costs) < n:
        size = 2 if r.random() < 0.9 else r.randint(3, 5)
        for k in range(size):
            costs.append(r.randint(5, 120) if k == 0 else int(r.paretovariate(1.3) * 150))
            starts.append(k == 0)
    return costs[:n], bytes(starts[:n])


def _backend(name: str):
    fn = BACKENDS[name]
    if fn is None:
        pytest.skip("the compiled core is not built")
    return fn


@pytest.mark.benchmark(group="split")
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_plan_100k_turns(benchmark, backend: str) -> None:
    plan = _backend(backend)
    costs, starts = _turn_costs(N_TURNS)
    out = benchmark(plan, costs, starts, BUDGET)
    assert len(out) % 4 == 0 and out[-3] == N_TURNS
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["turns/s"] = round(N_TURNS / benchmark.stats.stats.median)


def _conversations(n: int, seed: int = 0) -> list[tuple[Conversation, list[int]]]:
    """``n`` conversations with the shape of the generator's records, and token counts."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        exchanges = r.choices(
            (1, 2, 3, 4, 5, 7, 10, 15, 24, 40), weights=(35, 16, 12, 10, 8, 7, 6, 3, 2, 1)
        )[0]
        turns, counts = [], []
        if r.random() < 0.2:
            turns.append(Turn("system", "be brief"))
            counts.append(r.randint(5, 60))
        for _ in range(exchanges):
            turns += [Turn("user", "q"), Turn("assistant", "a")]
            counts += [r.randint(5, 120), int(r.paretovariate(1.3) * 150)]
        out.append((Conversation(id=f"c{i}", turns=turns), counts))
    return out


@pytest.mark.benchmark(group="split")
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_split_conversation(benchmark, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setattr(convkit.split, "plan", _backend(backend))
    convs = _conversations(N_CONVS)

    def run() -> int:
        return sum(
            len(split_conversation(conv, counts, max_tokens=BUDGET, turn_overhead=7).segments)
            for conv, counts in convs
        )

    assert benchmark(run) >= N_CONVS // 2
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["conversations/s"] = round(N_CONVS / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="split")
def test_fastchat_boundaries(benchmark) -> None:
    """FastChat's loop on the same counts, for scale (counts only: it knows no roles)."""
    counts = [c for _, c in _conversations(N_CONVS)]
    assert benchmark(lambda: sum(len(fastchat_boundaries(c, BUDGET)) for c in counts)) > 0
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["conversations/s"] = round(N_CONVS / benchmark.stats.stats.median)
