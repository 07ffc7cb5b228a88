"""Group ``tokenize``: counting the tokens of turns, one batched call (what convkit does) against
one ``encode`` call per turn (what FastChat's splitter does), on the same turns."""

from __future__ import annotations

import datagen
import pytest

from convkit import TokenCounter

N_RECORDS = 60


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Turn texts of generated records, assistant turns as markdown (as the splitter sees them)."""
    from convkit.markdown import html_to_markdown

    out = []
    for rec in datagen.records(N_RECORDS, seed=1):
        for c in rec["conversations"]:
            out.append(html_to_markdown(c["value"]) if c["from"] == "gpt" else c["value"])
    return out


@pytest.mark.benchmark(group="tokenize")
@pytest.mark.parametrize("how", ["batched", "per_turn"])
def test_count_tokens(benchmark, tokenizer_path, texts: list[str], how: str) -> None:
    counter = TokenCounter(str(tokenizer_path))
    encode = counter.tokenizer.encode
    if how == "batched":
        total = benchmark(lambda: sum(counter.count(texts)))
    else:
        total = benchmark(lambda: sum(len(encode(t, add_special_tokens=False)) for t in texts))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    benchmark.extra_info.update(
        turns=len(texts), tokens=total, tokenizer=tokenizer_path.parent.name
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(mb / benchmark.stats.stats.median, 2)
