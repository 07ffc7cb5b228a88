"""Checks that the benchmarks measure what they claim: the FastChat-rules baseline follows
FastChat's rules, and the generator is seeded. Run by ``pytest benchmarks/`` (skipped under
``--benchmark-only``); not part of the normal ``pytest`` run."""

from __future__ import annotations

import os
import random
from collections import Counter

import datagen
import fastchat_rules as fr
import pytest

from convkit.split import fastchat_boundaries

md = fr.html_converter("compat")
errors = fr._parser_errors()


def clean(*messages: tuple[str, str]) -> tuple[list[str], int]:
    sample = {"id": "x", "conversations": [{"from": f, "value": v} for f, v in messages]}
    sample, code = fr.clean_one(sample, md, errors)
    return [c["value"] for c in sample["conversations"]], code


def test_clean_rules() -> None:
    q, a = ("human", "what is a tree?"), ("gpt", "<p>A plant with a trunk.</p>")
    assert clean(q)[1] == fr.TOO_SHORT
    assert clean(a, q, a) == (["what is a tree?", "A plant with a trunk."], fr.OK)  # leading gpt
    assert clean(q, a, q) == (["what is a tree?", "A plant with a trunk."], fr.OK)  # trailing human
    assert clean(q, q, a)[1] == fr.WRONG_FORMAT
    assert clean(q, ("gpt", "<p>ask ChatGPT</p>"))[1] == fr.BLOCKED
    assert clean(q, ("gpt", '<a href="https://openai.com">x</a>'))[1] == fr.BLOCKED  # raw HTML
    assert (
        clean(q, ("gpt", "<p>!Too many requests in 1 hour. Try again later.</p>"))[1] == fr.BLOCKED
    )
    assert clean(q, a, q, ("gpt", ""))[0] == ["what is a tree?", "A plant with a trunk."]  # cut
    assert clean(("human", "hi"), ("gpt", "yo"))[1] == fr.TOO_SHORT  # < 16 characters


def test_dedup_in_input_order() -> None:
    def s(cid: str, q: str, **extra: object) -> tuple[dict, int]:
        return {
            "id": cid,
            "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "a"}],
            **extra,
        }, 0

    counts: Counter[str] = Counter()
    kept = fr.dedup(
        [s("a", "1"), s("a", "2"), s("b", "1"), s("c", "3", plugins=["x"]), s("d", "4")], counts
    )
    assert [k["id"] for k in kept] == ["a", "d"]
    assert counts == {"id_duplication": 1, "value_duplication": 1, "plugins": 1}


class _Enc:
    def __init__(self, n: int) -> None:
        self.ids = [0] * n


def test_split_loop_is_fastchats_rule() -> None:
    r = random.Random(0)
    for _ in range(500):
        counts = [r.randint(0, 900) for _ in range(r.randint(0, 14))]
        convs = [{"from": ("human", "gpt")[i % 2], "value": str(i)} for i in range(len(counts))]
        segs = fr.split_one(
            {"id": "x", "conversations": convs}, lambda v, counts=counts: _Enc(counts[int(v)]), 2048
        )
        # counts here include the special tokens, as FastChat's tokenizer call does
        starts = [int(g["id"].split("_")[1]) for g in segs]
        got = [(s, s + len(g["conversations"])) for s, g in zip(starts, segs)]
        assert got == fastchat_boundaries(counts, 2048)


@pytest.mark.skipif(
    not os.environ.get("CONVKIT_MARKDOWNIFY_0116"),
    reason="set CONVKIT_MARKDOWNIFY_0116=DIR "
    "(pip install --target DIR markdownify==0.11.6) to check against the real markdownify",
)
def test_compat_engine_equals_markdownify_0116() -> None:
    real = fr.html_converter("markdownify", os.environ["CONVKIT_MARKDOWNIFY_0116"])
    for html in datagen.gpt_turns(100, seed=3):
        assert md(html) == real(html)


def test_generator_is_seeded() -> None:
    assert list(datagen.records(20, seed=5))[10:] == [datagen.record(i, 5) for i in range(10, 20)]
    assert datagen.record(3, 0) != datagen.record(3, 1)
    assert datagen.gpt_turns(3) == datagen.gpt_turns(3)
