"""Group ``markdown``: HTML -> markdown of assistant turns with each of convkit's engines
(``convkit.markdown.ENGINES``: the compiled ``fast`` walk and the ``markdownify`` reference, same
output), the compiled one on its own thread (``BatchConverter``) and the FastChat compat
converter, on the same fixed turns; ``extra_info`` carries MB/s
(10^6 bytes of HTML)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import datagen
import pytest

from convkit import markdown

GENERATED_TURNS = 200
RENDERED_TURNS = 300
# Older trees have one engine and no ``engine`` parameter.
ENGINES = tuple(getattr(markdown, "ENGINES", ("markdownify",)))
_TAKES_ENGINE = "engine" in inspect.signature(markdown.html_to_markdown).parameters


def _converter(name: str) -> Callable[[str], str]:
    if name == "fastchat":
        return lambda h: markdown.html_to_markdown(h, compat="fastchat")
    if _TAKES_ENGINE:
        return lambda h: markdown.html_to_markdown(h, engine=name)
    return markdown.html_to_markdown


def _rendered_turns() -> list[str]:
    data = datagen.load_rendered(limit=200)
    if data is None:
        pytest.skip("the rendered corpus is absent (set CONVKIT_SHARED_DATA)")
    turns = [c["value"] for rec in data for c in rec["conversations"] if c["from"] == "gpt"]
    return turns[:RENDERED_TURNS]


@pytest.fixture(scope="module", params=["generated", "rendered"])
def turns(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "generated":
        return datagen.gpt_turns(GENERATED_TURNS, seed=0)
    return _rendered_turns()


@pytest.mark.benchmark(group="markdown")
@pytest.mark.parametrize("engine", [*ENGINES, "fastchat"])
def test_html_to_markdown(benchmark, turns: list[str], engine: str) -> None:
    if engine == "fast" and not markdown.fast.AVAILABLE:
        pytest.skip(f"the fast engine is off here: {markdown.fast.UNAVAILABLE_REASON}")
    convert = _converter(engine)
    mb = sum(len(t.encode()) for t in turns) / 1e6
    benchmark.extra_info.update(turns=len(turns), mb=round(mb, 3))
    assert benchmark(lambda: sum(len(convert(t)) for t in turns)) > 0
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(mb / benchmark.stats.stats.median, 2)


@pytest.mark.benchmark(group="markdown")
def test_batch_converter(benchmark, turns: list[str]) -> None:
    """The compiled engine on its own thread (``BatchConverter``, as a one-process run uses
    it): a list submitted and collected, with the messages it leaves to Python converted on
    this thread; ``fallbacks`` says how many."""
    if "fast" not in ENGINES or not markdown.fast.AVAILABLE:
        pytest.skip("the fast engine is off here")
    from convkit.markdown._fast import BatchConverter

    mb = sum(len(t.encode()) for t in turns) / 1e6
    with BatchConverter() as converter:

        def run() -> int:
            converter.submit(turns)
            return sum(len(m) for m in converter.collect())

        assert benchmark(run) > 0
        benchmark.extra_info.update(
            turns=len(turns), mb=round(mb, 3), fallbacks=converter.last_fallbacks
        )
    if benchmark.stats is not None:
        benchmark.extra_info["MB/s"] = round(mb / benchmark.stats.stats.median, 2)
