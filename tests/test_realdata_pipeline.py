"""The whole pipeline on the real data in ../shared/data (skipped, with the reason, without it)."""

from __future__ import annotations

import json
import re

from convkit import convert
from convkit.tokens import TokenCounter


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_raw_sharegpt_html_end_to_end(shared_data, tmp_path):
    src = shared_data / "sharegpt_html" / "zetavg_twlm_sharegpt52k_raw_html_with_markdown.json"
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    result = convert(src, out, rejects=rej, workers=1)
    assert result.stats.balanced and result.stats.conversations_in == 6
    kept = lines(out)
    assert [r["id"] for r in kept] == [
        "qhuNCkw",
        "mS9Mjsz",
        "4caKvEr",
        "aBcTm4S",
        "3p7VL5M",
        "6giMdbE",
    ]
    gpt = [t["value"] for r in kept for t in r["conversations"] if t["from"] == "gpt"]
    assert not any("<div" in v or "Copy code" in v for v in gpt)
    code = next(r for r in kept if r["id"] == "aBcTm4S")
    fences = [m for t in code["conversations"] for m in re.findall(r"^```(\w*)$", t["value"], re.M)]
    # 7 code blocks, each opened with its language and closed
    assert fences.count("swift") == 7 and fences.count("") == 7


def test_cleaned_sharegpt_is_left_as_markdown_and_split_within_the_limit(shared_data, tmp_path):
    src = shared_data / "sharegpt_cleaned" / "ShareGPT_V3_unfiltered_cleaned_split.sample400.json"
    tok = shared_data / "tokenizers" / "llama" / "tokenizer.json"
    out, rej, st = tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "stats.json"
    result = convert(
        src, out, rejects=rej, stats=st, tokenizer=str(tok), max_tokens=2048, workers=2
    )
    stats = json.loads(st.read_text())
    assert stats["html_turns_converted"] == 0
    assert stats["accounted"] is True
    kept = lines(out)
    counter = TokenCounter(str(tok))
    for seg in kept:
        turns = seg["conversations"]
        body = [t for t in turns if t["from"] != "system"]
        assert body[0]["from"] == "human" and body[-1]["from"] == "gpt"
        # counted as declared: content tokens + 1 BOS per segment (llama's post-processor)
        assert sum(counter.count([t["value"] for t in turns])) + 1 <= 2048
    ids = [seg["id"] for seg in kept]
    assert len(ids) == len(set(ids))
    rejected = lines(rej)
    assert len(rejected) == sum(stats["rejected_by_reason"].values()) + sum(
        stats["parts_rejected_by_reason"].values()
    )
    assert result.stats.conversations_in == 400


def test_rendered_corpus_end_to_end(shared_data, tmp_path):
    src = shared_data / "sharegpt_html" / "rendered" / "sharegpt_v3_rendered_3000.json"
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    result = convert(src, out, rejects=rej, workers=2)
    assert result.stats.balanced and result.stats.conversations_in == 3000
    assert result.stats.html_turns > 11000
    kept = lines(out)
    assert len(kept) == result.stats.conversations_out
    text = "\n".join(t["value"] for r in kept for t in r["conversations"] if t["from"] == "gpt")
    # ("<span" may stay: inside code blocks that show HTML)
    assert "Copy code" not in text and "hljs-" not in text
