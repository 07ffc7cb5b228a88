"""The baseline of ``compare.py``: FastChat's ShareGPT pipeline, rule for rule, in one module.

What it is: ``fastchat/data/clean_sharegpt.py`` (REFERENCE.md §1) followed by
``fastchat/data/split_long_conversation.py`` (§2), re-written from their published source with the
same data structures (dicts from ``json.load``), the same order of checks and the same per-message
work:

- read the whole input with ``json.load``;
- per conversation (``clean_one``): drop one message or none; drop a leading non-``human`` and a
  trailing ``human`` message; each message must be ``["human", "gpt"][i % 2]``; the lowercase
  substrings ``openai``/``chatgpt`` in the *raw* value drop it; every message (human turns too) goes
  through FastChat's ``html_to_markdown``; a gpt message starting with the rate-limit text (with or
  without a leading ``!``) drops it; an empty converted message, or one starting with an
  unprintable character, cuts the conversation there; keep an even number of messages; fewer than
  16 characters or no message left drops it;
- then in input order (``dedup``): a repeated ``id``, a ``plugins`` field, a repeated
  (first message, second message) pair drop it;
- split (``split_one``): one ``tokenizer.encode(value)`` call per message, special tokens
  included as FastChat's ``tokenizer(value).input_ids`` includes the BOS, length + 6; FastChat's
  greedy pair loop with its bugs (lost tail, empty segment then one over the limit); ids
  ``{id}_{start}``; then ``filter_invalid_roles`` (which also drops the empty segments);
- write the result with ``json.dump(..., indent=2)``.

``workers > 1`` runs the clean and split steps through ``ProcessPoolExecutor.map`` with its default
chunk size of 1, as FastChat does (FastChat uses every core).

Where it deviates, and in whose favour:

- **Tokenizer**: FastChat loads ``AutoTokenizer(..., use_fast=False)``, the slow SentencePiece
  tokenizer; here the same vocabulary runs in the Rust ``tokenizers`` library (the tokenizer.json
  convkit gets). Same counts, much faster: the baseline's split step is faster than FastChat's.
- **HTML converter**: ``engine="compat"`` uses :func:`convkit.markdown.html_to_markdown` with
  ``compat="fastchat"``, a re-implementation of markdownify 0.11.6 (the version FastChat pins)
  tested byte-identical to FastChat; ``engine="markdownify"`` calls the real markdownify, e.g. a
  0.11.6 installed apart with ``pip install --target DIR markdownify==0.11.6`` and loaded from
  ``DIR`` under a private name (convkit's own engine needs the newer markdownify in the same
  process). Both parse with BeautifulSoup's ``html.parser`` and run at about the same speed.
- **Parser failures**: FastChat catches ``ParserRejectedMarkup`` and ``AssertionError`` and crashes
  on the rest (``RecursionError`` on deep nesting, ...); the compat engine reports all of them as
  :class:`convkit.InputError`, counted here as parser errors (code 4) instead of crashing.
- **One process, one pool**: FastChat's two scripts write and re-read an intermediate JSON file and
  start two process pools; here the cleaned list goes straight to the split step, and one pool
  (spawned, as convkit's are, so a tokenizer thread pool never meets ``fork``) serves both.
- No logging: FastChat prints one line per dropped conversation and runs tqdm bars.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BLOCKED_RESPONSES",
    "BLOCKED_WORDS",
    "RunResult",
    "clean_all",
    "clean_one",
    "dedup",
    "filter_invalid_roles",
    "html_converter",
    "run",
    "split_all",
    "split_one",
]

ROLES = ("human", "gpt")
BLOCKED_WORDS = ("openai", "chatgpt")
BLOCKED_RESPONSES = (
    "Too many requests in 1 hour. Try again later.",
    "!Too many requests in 1 hour. Try again later.",
)
# clean_one's result codes, FastChat's numbering.
OK, TOO_SHORT, WRONG_FORMAT, BLOCKED, PARSER_ERROR = 0, 1, 2, 3, 4
CODE_NAMES = {
    TOO_SHORT: "too_short",
    WRONG_FORMAT: "wrong_format",
    BLOCKED: "blocked_words",
    PARSER_ERROR: "parser_error",
}

# FastChat's regexes (clean_sharegpt.py), with the escapes its non-raw strings meant.
_DIV = re.compile("<div.*?>")
_SPAN = re.compile("<span.*?>")
_CODE_LANG = re.compile("```\\s*" + "(.*?)" + "(?:Copy code)+" + "(.+?)" + "\\s*?```", re.DOTALL)
_CODE_LANG_FORMAT = "```\\g<1>\n\\g<2>\n```"
_REGENERATE = re.compile("\\d+ / \\d+")
_COPY_CHARS = re.compile("Copy\\d+ chars / \\d+ words")
_COPY_CODE = re.compile("```(.*?)Copy code\\s*```")


# ------------------------------------------------------------------ the HTML converter


def _load_markdownify(path: str | None) -> Any:
    """The markdownify module: from ``path`` (a ``pip install --target`` folder) under a private
    name, so that the markdownify convkit imports stays untouched; else the importable one."""
    if path is None:
        import markdownify

        return markdownify
    init = Path(path) / "markdownify" / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"no markdownify package in {path} (expected {init})")
    name = "_fastchat_markdownify"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, init)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def markdownify_version(path: str | None) -> str:
    """The version of the markdownify ``engine="markdownify"`` would use."""
    from importlib.metadata import PathDistribution, version

    if path is None:
        return version("markdownify")
    for dist in Path(path).glob("markdownify-*.dist-info"):
        return PathDistribution(dist).version
    return "unknown"


def html_converter(
    engine: str = "compat", markdownify_path: str | None = None
) -> Callable[[str], str]:
    """FastChat's ``html_to_markdown``: ``engine`` "compat" (convkit's byte-identical copy) or
    "markdownify" (FastChat's function around the real markdownify)."""
    if engine == "compat":
        from convkit.markdown import fastchat

        return fastchat.html_to_markdown
    if engine != "markdownify":
        raise ValueError(f"engine must be 'compat' or 'markdownify', got {engine!r}")
    md = _load_markdownify(markdownify_path).markdownify

    def html_to_markdown(val: str) -> str:  # FastChat's function, step for step
        val = _DIV.sub("", val)
        val = _SPAN.sub("", val)
        val = md(val).strip()
        val = _CODE_LANG.sub(_CODE_LANG_FORMAT, val)
        noise = _REGENERATE.search(val)
        if noise and noise.start() == 0:
            val = val[noise.end() :]
        val = _COPY_CHARS.sub("", val)
        val = _COPY_CODE.sub("", val)
        return val.replace("\n\n\n", "\n").strip()

    return html_to_markdown


def _parser_errors() -> tuple[type[BaseException], ...]:
    from bs4.builder import ParserRejectedMarkup

    from convkit.errors import InputError

    return (ParserRejectedMarkup, AssertionError, InputError)


# ------------------------------------------------------------------ cleaning


def contain_blocked_words(val: str) -> bool:
    low = val.lower()
    return any(w in low for w in BLOCKED_WORDS)


def contain_blocked_responses(role: str, val: str) -> bool:
    return role == "gpt" and val.startswith(BLOCKED_RESPONSES)


def clean_one(
    sample: dict[str, Any],
    to_markdown: Callable[[str], str],
    errors: tuple[type[BaseException], ...] = (),
) -> tuple[dict[str, Any], int]:
    """FastChat's ``clean_html_one_sample``: the sample (changed in place) and a result code."""
    convs = sample["conversations"]
    if len(convs) <= 1:
        return sample, TOO_SHORT
    # FastChat: "Adjust the offset for cases like https://sharegpt.com/c/VyaZlh4"
    if convs[0]["from"] != "human":
        convs = sample["conversations"] = convs[1:]
    if len(convs) <= 1:
        return sample, TOO_SHORT
    if convs[-1]["from"] == "human":
        convs = sample["conversations"] = convs[:-1]
    if len(convs) <= 1:
        return sample, TOO_SHORT

    char_count = 0
    new_convs = []
    for i, c in enumerate(convs):
        if c["from"] != ROLES[i % 2]:
            return sample, WRONG_FORMAT
        if contain_blocked_words(c["value"]):
            return sample, BLOCKED
        try:
            new_val = to_markdown(c["value"])
        except errors:
            return sample, PARSER_ERROR
        if contain_blocked_responses(c["from"], new_val):
            return sample, BLOCKED
        # FastChat: "Filter empty answers like https://sharegpt.com/c/mrllZ6u"
        if not new_val or not new_val[0].isprintable():
            break
        char_count += len(new_val)
        new_convs.append({"from": c["from"], "value": new_val})

    new_convs = new_convs[: len(new_convs) // 2 * 2]
    sample["conversations"] = new_convs
    if char_count < 16 or len(new_convs) <= 0:
        return sample, TOO_SHORT
    return sample, OK


def dedup(
    processed: Iterable[tuple[dict[str, Any], int]], counts: Counter[str]
) -> list[dict[str, Any]]:
    """FastChat's loop after cleaning, in input order: result codes, repeated ids, plugins,
    repeated (first, second) message pairs. ``counts`` gets one entry per drop reason."""
    visited: dict[Any, str] = {}
    out = []
    for sample, code in processed:
        cid = sample["id"]
        if code != OK:
            counts[CODE_NAMES[code]] += 1
        elif cid in visited:
            counts["id_duplication"] += 1
        elif sample.get("plugins", None) is not None:
            counts["plugins"] += 1
        else:
            convs = sample["conversations"]
            key = (convs[0]["value"], convs[1]["value"])
            if key in visited:
                counts["value_duplication"] += 1
            else:
                visited[cid] = visited[key] = cid
                out.append(sample)
    return out


# ------------------------------------------------------------------ splitting


def make_sample(sample: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    assert (end - start) % 2 == 0
    return {
        "id": sample["id"] + "_" + str(start),
        "conversations": sample["conversations"][start:end],
    }


def split_one(
    sample: dict[str, Any], encode: Callable[[str], Any], max_length: int
) -> list[dict[str, Any]]:
    """FastChat's ``split_one_sample``.

    ``encode(text).ids`` stands for FastChat's ``tokenizer(text).input_ids``.
    """
    tokenized_lens = []
    convs = sample["conversations"]
    convs = convs[: len(convs) // 2 * 2]
    for c in convs:
        tokenized_lens.append(len(encode(c["value"]).ids) + 6)

    start_idx = 0
    cur_len = 0
    if len(convs) % 2 != 0 or len(convs) < 2:
        return []
    new_samples = []
    for i in range(0, len(convs), 2):
        tmp_len = tokenized_lens[i] + tokenized_lens[i + 1]
        if cur_len + tmp_len > max_length:
            new_samples.append(make_sample(sample, start_idx, i))
            start_idx = i
            cur_len = 0
        elif i == len(convs) - 2:
            new_samples.append(make_sample(sample, start_idx, i + 2))
        cur_len += tmp_len
    return new_samples


def filter_invalid_roles(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in content:
        if len(c["conversations"]) <= 0:
            continue
        if all(s["from"] == ROLES[j % 2] for j, s in enumerate(c["conversations"])):
            out.append(c)
    return out


# ------------------------------------------------------------------ worker processes

# Per-process state, as FastChat keeps its tokenizer in module globals for its pool.
_STATE: dict[str, Any] = {}


def _init(
    engine: str, markdownify_path: str | None, tokenizer: str | None, max_length: int | None
) -> None:
    import warnings

    from bs4 import MarkupResemblesLocatorWarning

    # BeautifulSoup warns on messages that look like a file name or URL; FastChat prints them too,
    # but they are noise here (convkit's compat engine keeps them from firing at all).
    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
    _STATE["to_markdown"] = html_converter(engine, markdownify_path)
    _STATE["errors"] = _parser_errors()
    if tokenizer is not None:
        from convkit.tokens import (
            load_tokenizer,  # truncation and padding off, like FastChat's call
        )

        _STATE["encode"] = load_tokenizer(tokenizer).encode
        _STATE["max_length"] = max_length


def _clean_task(sample: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return clean_one(sample, _STATE["to_markdown"], _STATE["errors"])


def _split_task(sample: dict[str, Any]) -> list[dict[str, Any]]:
    return split_one(sample, _STATE["encode"], _STATE["max_length"])


def clean_all(
    content: list[dict[str, Any]], pool: Any, counts: Counter[str]
) -> list[dict[str, Any]]:
    """Clean every sample (in ``pool`` when given, else here), then dedup in input order."""
    if pool is None:
        processed = [_clean_task(s) for s in content]
    else:
        processed = list(pool.map(_clean_task, content))
    return dedup(processed, counts)


def split_all(content: list[dict[str, Any]], pool: Any) -> list[dict[str, Any]]:
    new_content: list[dict[str, Any]] = []
    results = map(_split_task, content) if pool is None else pool.map(_split_task, content)
    for result in results:
        new_content.extend(result)
    return filter_invalid_roles(new_content)


# ------------------------------------------------------------------ one run


@dataclass
class RunResult:
    """What one baseline run kept, and the wall seconds of each step."""

    records: int
    kept: int  # conversations after cleaning and dedup
    segments: int | None  # after splitting (None without a tokenizer)
    split_kept: int | None = None  # conversations with at least one segment
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)


def run(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    max_length: int = 2048,
    workers: int = 1,
    engine: str = "compat",
    markdownify_path: str | None = None,
) -> RunResult:
    """Clean ``input_path`` (and split it, when ``tokenizer`` is given) into ``output_path``."""
    clock = time.perf_counter
    seconds: dict[str, float] = {}
    tok = os.fspath(tokenizer) if tokenizer is not None else None
    t0 = clock()
    pool = None
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init,
            initargs=(engine, markdownify_path, tok, max_length),
        )
    else:
        _init(engine, markdownify_path, tok, max_length)
    try:
        with open(input_path, encoding="utf-8") as f:
            content = json.load(f)
        t1 = clock()
        seconds["load"] = t1 - t0
        counts: Counter[str] = Counter()
        cleaned = clean_all(content, pool, counts)
        t2 = clock()
        seconds["clean"] = t2 - t1
        result = RunResult(
            records=len(content), kept=len(cleaned), segments=None, dropped=counts, seconds=seconds
        )
        out = cleaned
        if tok is not None:
            out = split_all(cleaned, pool)
            result.segments = len(out)
            result.split_kept = len({s["id"].rsplit("_", 1)[0] for s in out})
            seconds["split"] = clock() - t2
        t3 = clock()
        with open(output_path, "w") as f:
            json.dump(out, f, indent=2)
        seconds["write"] = clock() - t3
    finally:
        if pool is not None:
            pool.shutdown()
    seconds["wall"] = clock() - t0
    return result
