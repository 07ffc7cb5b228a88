"""Group ``end-to-end``: ``convkit.convert`` on a generated ShareGPT dump (``conftest.E2E_RECORDS``
records), without and with ``max_tokens``, in 1 and 2 worker processes (start-up included)."""

from __future__ import annotations

import json

import pytest

import convkit
from convkit import Options

ROUNDS = 5


@pytest.mark.benchmark(group="end-to-end")
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("max_tokens", [None, 2048], ids=["no-split", "split-2048"])
def test_convert(benchmark, tmp_path, generated_file, tokenizer_path, max_tokens, workers) -> None:
    options = Options(
        workers=workers,
        tokenizer=str(tokenizer_path) if max_tokens else None,
        max_tokens=max_tokens,
    )
    stats = tmp_path / "stats.json"

    def run() -> convkit.Result:
        return convkit.convert(generated_file, tmp_path / "out.jsonl", stats=stats, options=options)

    result = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    mb = generated_file.stat().st_size / 1e6
    assert result.stats.conversations_out > 0
    benchmark.extra_info.update(
        mb=round(mb, 2),
        kept=result.stats.conversations_out,
        segments=result.stats.segments,
        stage_seconds=json.loads(stats.read_text())["seconds"],
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(mb / benchmark.stats.stats.median, 2)
