"""Fixtures of the pytest-benchmark suite: ``pytest benchmarks/ --benchmark-only``.

Not part of the normal ``pytest`` run (pyproject's testpaths is ``tests``). Without an installed
convkit, the clone this folder belongs to is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:
    import convkit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import datagen

#: Records of the generated file of the end-to-end group (about 6.8 MB).
E2E_RECORDS = 300


@pytest.fixture(scope="session")
def tokenizer_path() -> Path:
    """The shared llama tokenizer when present, else the small one in examples/."""
    return datagen.default_tokenizer()


@pytest.fixture(scope="session")
def generated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ShareGPT dump of ``E2E_RECORDS`` generated records (seed 0)."""
    return datagen.write_json(
        tmp_path_factory.mktemp("data") / "sharegpt.json", E2E_RECORDS, seed=0
    )


# Rates (MB/s, turns/s, ...) live in extra_info, which pytest-benchmark's table does not show:
# collect them and print one short table at the end.
_RATES: list[tuple[str, str, float, dict]] = []
_RATE_KEYS = ("MB/s", "turns/s", "conversations/s")


@pytest.fixture(autouse=True)
def _collect_rates(request: pytest.FixtureRequest):
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is None or bench.stats is None:
        return
    rates = {k: v for k, v in bench.extra_info.items() if k in _RATE_KEYS}
    if rates:
        _RATES.append((bench.group or "", request.node.name, bench.stats.stats.median, rates))


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RATES:
        return
    tr = terminalreporter
    tr.section("benchmark rates (medians)")
    tr.write_line("| group | benchmark | median ms | rate |")
    tr.write_line("|---|---|---:|---:|")
    for group, name, median, rates in sorted(_RATES, key=lambda x: x[0]):
        rate = ", ".join(f"{v:,} {k}" for k, v in rates.items())
        tr.write_line(f"| {group} | `{name}` | {median * 1e3:.1f} | {rate} |")
