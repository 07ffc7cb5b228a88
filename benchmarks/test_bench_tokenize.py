"""Group ``tokenize``: counting the tokens of turns, one batched call (what convkit does: with
llama's tokenizer, its normalizer done in Python, the text cut into words and each word's count
remembered, see ``convkit.normalise`` and ``convkit._words``; ``batched`` rounds after the
first find every word known, ``batched_new_words`` starts each round with the table empty), one
batched call of the tokenizer as its file defines it, and one ``encode`` call per turn (what
FastChat's splitter does), on the same turns."""

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
@pytest.mark.parametrize("how", ["batched", "batched_new_words", "batched_as_file", "per_turn"])
def test_count_tokens(benchmark, tokenizer_path, texts: list[str], how: str) -> None:
    counter = TokenCounter(str(tokenizer_path))
    encode = counter.tokenizer.encode
    if how == "batched":
        total = benchmark(lambda: sum(counter.count(texts)))
    elif how == "batched_new_words":
        words = counter._loaded()._words
        if words is None:
            pytest.skip("this tokenizer's counter keeps no word table")
        total = benchmark.pedantic(
            lambda: sum(counter.count(texts)), setup=words.clear, rounds=20, warmup_rounds=1
        )
    elif how == "batched_as_file":
        batch = counter.tokenizer.encode_batch_fast
        total = benchmark(lambda: sum(len(e) for e in batch(texts, add_special_tokens=False)))
    else:
        total = benchmark(lambda: sum(len(encode(t, add_special_tokens=False)) for t in texts))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    benchmark.extra_info.update(
        turns=len(texts), tokens=total, tokenizer=tokenizer_path.parent.name
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(mb / benchmark.stats.stats.median, 2)
