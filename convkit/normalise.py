"""A tokenizer's normalizer done in Python before the batched call, and its text cut into words,
when that is exact and cheaper.

Llama's and Mistral's ``tokenizer.json`` normalise with ``Prepend("▁")`` then
``Replace(" ", "▁")``. Inside ``tokenizers`` every such step rewrites the text while keeping an
alignment entry per byte, which is about a sixth of a count's CPU on ShareGPT turns; one
``str.replace`` per text does the same rewrite at a fraction of the cost. The counts are the
same because the model sees the same normalised string (the tests compare them, text for text,
with the tokenizer's own normalizer).

The normalizer runs on each stretch of text between the added tokens (``<s>``, ``</s>``), which
are split off first, so a text holding one is cut the same way here. :func:`plain_normaliser`
says whether a tokenizer qualifies and how to normalise for it; ``None`` leaves it as it is.

Such a tokenizer has no pre-tokenizer: its BPE model merges a whole turn as one word, keeping
every candidate pair of the turn in one heap (half a count's CPU is that heap). When no token
of the vocabulary holds the word mark ``▁`` after another character, no merge can cross the
start of a run of marks, so cutting the text there (:func:`word_splitter`) gives the same
tokens, from small words that the model's cache remembers.

Cut so, a text's tokens are its words' tokens, each word tokenised alone, so a table of word
counts (``convkit._words``) can answer for the words it has seen: :func:`word_mark` says when
the normalizer is exactly the prepend and the replace of a space that the table does itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tokenizers import Regex, pre_tokenizers

__all__ = ["AddedTokens", "plain_normaliser", "word_mark", "word_splitter", "word_stops"]


def _steps(normalizer: Any) -> list[tuple[str, str, str]] | None:
    """The normalizer as ("prepend", text, "") and ("replace", old, new) steps, or None when
    it does anything else."""
    if normalizer is None:
        return None
    try:
        spec = json.loads(normalizer.__getstate__())
    except (AttributeError, TypeError, ValueError):  # a custom Python normalizer
        return None
    parts = spec.get("normalizers") if spec.get("type") == "Sequence" else [spec]
    if not isinstance(parts, list) or not parts:
        return None
    steps = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "Prepend" and isinstance(part.get("prepend"), str) and part["prepend"]:
            steps.append(("prepend", part["prepend"], ""))
        elif kind == "Replace":
            pattern, content = part.get("pattern"), part.get("content")
            old = pattern.get("String") if isinstance(pattern, dict) else None
            if not isinstance(old, str) or not old or not isinstance(content, str):
                return None  # a regex pattern, or nothing to find
            steps.append(("replace", old, content))
        else:
            return None
    return steps


class AddedTokens:
    """Where a tokenizer's added tokens (``<s>``, ``</s>``) are in a text, found as the
    tokenizer finds them in the raw text, and their ids."""

    __slots__ = ("_firsts", "_splitter", "contents", "ids")

    def __init__(self, tokenizer: Any) -> None:
        self.ids = {t.content: i for i, t in tokenizer.get_added_tokens_decoder().items()}
        # Longest first: at one position the regex takes the first alternative that matches,
        # which is then the leftmost-longest match tokenizers' added vocabulary takes.
        self.contents = sorted((c for c in self.ids if c), key=lambda c: (-len(c), c))
        self._splitter = re.compile("(" + "|".join(map(re.escape, self.contents)) + ")")
        self._firsts = "".join(sorted({c[0] for c in self.contents}))

    def holds(self, text: str) -> bool:
        """Whether ``text`` holds an added token."""
        if type(text) is not str:  # a subclass's own `in` must not hide one
            text = str.__str__(text)
        return any(c in text for c in self._firsts) and any(c in text for c in self.contents)

    def split(self, text: str) -> list[str] | None:
        """``text`` as stretch, token, stretch, ..., stretch (stretches may be empty), or None
        when it holds no added token."""
        if not self.contents or not self.holds(text):
            return None
        return self._splitter.split(text)


def plain_normaliser(
    tokenizer: Any, added: AddedTokens | None = None
) -> Callable[[str], str] | None:
    """A function doing ``tokenizer``'s normalizer on a whole text, added tokens left as they
    are, when the normalizer only prepends and replaces fixed strings and the added tokens are
    matched on the raw text without stripping; else None.

    Encoding its result with the normalizer removed gives the ids of encoding the text with it.
    ``added``: the tokenizer's :class:`AddedTokens`, when the caller has them.
    """
    steps = _steps(tokenizer.normalizer)
    if steps is None or getattr(tokenizer, "encode_special_tokens", False):
        return None
    # The added tokens are found in the text before it is normalised, and not after. So that
    # finding them in the normalised text finds the same ones, the steps must neither make a
    # new one (writing or prepending any of its characters, or deleting what stood between
    # two parts of one) nor break one (replacing any of its characters).
    touched = {c for _, a, b in steps for c in a + b}
    deletes = any(kind == "replace" and not b for kind, _, b in steps)
    contents = []
    for token in tokenizer.get_added_tokens_decoder().values():
        content = token.content
        if (
            token.normalized
            or token.lstrip
            or token.rstrip
            or token.single_word
            or not content
            or deletes
            or not touched.isdisjoint(content)
        ):
            return None
        contents.append(content)

    def normalise(text: str) -> str:
        for kind, a, b in steps:
            if kind == "replace":
                text = text.replace(a, b)
            elif text:  # Prepend leaves an empty text empty, also one a Replace emptied
                text = a + text
        return text

    if not contents:
        return normalise
    if added is None:
        added = AddedTokens(tokenizer)

    def normalise_around_added(text: str) -> str:
        parts = added.split(text)  # stretch, token, stretch, ..., stretch
        if parts is None:
            return normalise(text)
        return "".join(p if i % 2 else normalise(p) for i, p in enumerate(parts))

    return normalise_around_added


def word_splitter(tokenizer: Any, vocab: dict[str, int] | None = None) -> Any | None:
    """A pre-tokenizer cutting the normalised text before each run of the word mark (the
    character the normalizer writes for a space), when that cannot change the tokens: the
    tokenizer has no pre-tokenizer, its model is a deterministic BPE that treats every word
    alike (no dropout, no word prefix or suffix, merges never skipped) and drops no character
    (it has an unknown token: without one, marks on both sides of a dropped character would
    meet), the mark is a token, and no token holds the mark after another character. Else
    None. ``vocab``: the model's vocabulary, when the caller has it."""
    steps = _steps(tokenizer.normalizer)
    marks = [b for kind, a, b in steps or () if kind == "replace" and a == " " and len(b) == 1]
    model = tokenizer.model
    if (
        tokenizer.pre_tokenizer is not None
        or len(marks) != 1
        or type(model).__name__ != "BPE"
        or model.dropout is not None
        or model.continuing_subword_prefix
        or model.end_of_word_suffix
        or getattr(model, "ignore_merges", False)
        or not model.unk_token
    ):
        return None
    mark = marks[0]
    if vocab is None:
        vocab = tokenizer.get_vocab(with_added_tokens=False)
    if (
        mark not in vocab
        or model.unk_token not in vocab
        or any(mark in token.lstrip(mark) for token in vocab)
    ):
        return None
    return pre_tokenizers.Split(Regex(re.escape(mark) + "+"), behavior="merged_with_next")


def word_mark(tokenizer: Any) -> str | None:
    """The word mark, when the normalizer only prepends it and writes it for each space
    (llama's and mistral's, in either order); else None. The normalised text is then the mark
    and the text with each space made a mark. A word table needs :func:`word_splitter` too."""
    steps = _steps(tokenizer.normalizer)
    if steps is None or len(steps) != 2:
        return None
    kinds = {kind: (a, b) for kind, a, b in steps}
    prepend, replace = kinds.get("prepend"), kinds.get("replace")
    if prepend is None or replace is None or len(prepend[0]) != 1 or replace != (" ", prepend[0]):
        return None
    return prepend[0]


#: The byte tokens of a BPE with byte fallback, one per byte value.
_BYTE_TOKENS = frozenset(f"<0x{b:02X}>" for b in range(256))


def word_stops(tokenizer: Any, mark: str, vocab: dict[str, int]) -> bytes:
    """The characters (below U+10000) that no merge of ``tokenizer``'s BPE can join to a
    neighbour, as a bitmap (bit ``c & 7`` of byte ``c >> 3``), for a tokenizer
    :func:`word_splitter` cuts; ``vocab`` is its model's vocabulary.

    A merge makes a token of two, and the merged token is in the vocabulary: a character that
    no token of two or more characters holds is always a token of its own (or its bytes'
    tokens, under byte fallback), so the tokens on its two sides are those of each side alone.
    It must not become the unknown token, which joins unknown neighbours (``fuse_unk``): it is
    in the vocabulary, or the model falls back to bytes and has every byte's token. Byte tokens
    (``<0x0A>``) are set aside only when no merge can make one or take one in (no other token
    holds ``<0x``, and none of them is two tokens joined); else their characters count as held
    like any token's. Surrogates are never stops.
    """
    model = tokenizer.model
    byte = bool(getattr(model, "byte_fallback", False)) and _BYTE_TOKENS <= vocab.keys()
    everything = "\n".join(vocab)
    if byte:
        byte = everything.count("<0x") == len(_BYTE_TOKENS) and not any(
            t[:i] in vocab and t[i:] in vocab for t in _BYTE_TOKENS for i in range(1, len(t))
        )
    long = "".join(t for t in vocab if len(t) > 1 and not (byte and t in _BYTE_TOKENS))
    held = set(long) | {mark, " "}
    if byte:  # every character is a token or its bytes' tokens
        bits = bytearray(b"\xff" * 8192)
    else:
        bits = bytearray(8192)
        for t in vocab:
            if len(t) == 1 and ord(t) < 0x10000:
                bits[ord(t) >> 3] |= 1 << (ord(t) & 7)
    for c in held:
        if ord(c) < 0x10000:
            bits[ord(c) >> 3] &= ~(1 << (ord(c) & 7)) & 0xFF
    bits[0xD800 >> 3 : 0xE000 >> 3] = bytes((0xE000 - 0xD800) >> 3)
    return bytes(bits)
