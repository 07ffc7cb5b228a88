"""Loading tokenizers and counting tokens in batches, for the splitter's per-turn counts.

A tokenizer is named by a ``tokenizer.json`` path, a directory holding one, or a Hugging Face hub
name (which needs network access, or the hub's local cache). Counts are real token counts under
that tokenizer, without the special tokens its post-processor adds: those are declared separately
(:attr:`TokenCounter.special_tokens`, the default per-segment overhead).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer

from . import _backend
from .errors import ConfigError
from .normalise import AddedTokens, plain_normaliser, word_mark, word_splitter, word_stops

__all__ = ["TokenCounter", "load_tokenizer"]

# encode_batch_fast (tokenizers >= 0.20) skips computing character offsets, which counting
# does not need; older versions only have encode_batch.
_HAS_ENCODE_BATCH_FAST = hasattr(Tokenizer, "encode_batch_fast")


_UNSET = object()

#: How many words a counter's word table holds before it starts again (about 190 bytes each).
WORD_TABLE_LIMIT = 1 << 18

#: New words are tokenised this many to a text, a separator token between two: one encoding
#: per word costs twice as much.
_WORDS_PER_TEXT = 64


def _special_edges(shared: _Shared) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    plain = shared.encode(["a"], add_special_tokens=False)[0].ids
    full = shared.encode(["a"], add_special_tokens=True)[0].ids
    n = len(plain)
    for k in range(len(full) - n + 1):
        if full[k : k + n] == plain:
            return tuple(full[:k]), tuple(full[k + n :])
    return None


def _looks_like_path(spec: str) -> bool:
    # A hub name is "name" or "org/name"; these shapes can only be meant as local paths, so a
    # missing file gets a "no such file" error instead of a slow, confusing hub lookup.
    return (
        spec.endswith(".json")
        or spec.startswith(("/", "./", "../", "~"))
        or "\\" in spec
        or os.path.isabs(spec)
    )


def _neutralise(tokenizer: Tokenizer) -> Tokenizer:
    """Turn off truncation and padding, which a tokenizer.json may carry and would cap counts."""
    if tokenizer.truncation is not None:
        tokenizer.no_truncation()
    if tokenizer.padding is not None:
        tokenizer.no_padding()
    return tokenizer


def load_tokenizer(spec: str | os.PathLike[str]) -> Tokenizer:
    """Load a tokenizer from a ``tokenizer.json`` file, a directory holding one, or the hub.

    Truncation and padding are turned off. Raises :class:`ConfigError` when nothing loads.
    """
    text = os.fspath(spec)
    if not text:
        raise ConfigError("tokenizer must be a tokenizer.json path or a hub name, got ''")
    path = Path(text).expanduser()
    if path.is_dir():
        file = path / "tokenizer.json"
        if not file.is_file():
            raise ConfigError(
                f"cannot load tokenizer {text!r}: the directory has no tokenizer.json"
            )
    elif path.is_file():
        file = path
    elif _looks_like_path(text):
        raise ConfigError(f"cannot load tokenizer {text!r}: no such file or directory")
    else:
        try:
            tokenizer = Tokenizer.from_pretrained(text)
        except Exception as e:  # network, missing repo, no tokenizer.json in it, bad file
            raise ConfigError(
                f"cannot load tokenizer {text!r}: not a tokenizer.json file or directory, "
                f"and loading it from the hub failed ({e})"
            ) from e
        return _neutralise(tokenizer)
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as e:  # tokenizers raises a bare Exception for unreadable or invalid JSON
        raise ConfigError(
            f"cannot load tokenizer {text!r}: {file} is not a valid tokenizer.json ({e})"
        ) from e
    return _neutralise(tokenizer)


class _Shared:
    """A tokenizer as counters use it. ``counting`` encodes; when the tokenizer's normalizer
    only prepends and replaces fixed strings (llama's, mistral's), ``counting`` has none and
    ``normalise`` does its work on each text first, and when it can, ``counting`` cuts the text
    into words and ``count`` remembers the count of each word (see :mod:`convkit.normalise`):
    the same counts for less CPU. ``full`` is the tokenizer as its file defines it, built on
    first use when it is not ``counting``."""

    __slots__ = (
        "_added",
        "_full",
        "_lock",
        "_normalizer",
        "_separated",
        "_split",
        "_words",
        "_words_lock",
        "counting",
        "normalise",
    )

    def __init__(self, tokenizer: Tokenizer, *, own: bool) -> None:
        """``own``: the tokenizer is not the caller's, so its settings may be changed."""
        self.counting = tokenizer
        added = AddedTokens(tokenizer) if own else None
        self.normalise = plain_normaliser(tokenizer, added) if added is not None else None
        self._normalizer = None
        self._split = False
        self._full: Tokenizer | None = tokenizer
        self._lock = threading.Lock()
        self._words: Any = None
        self._words_lock = threading.Lock()
        self._added: AddedTokens | None = None
        self._separated: tuple[Tokenizer, str, int] | None = None
        if self.normalise is not None:
            vocab = tokenizer.get_vocab(with_added_tokens=False)
            split = word_splitter(tokenizer, vocab)
            mark = word_mark(tokenizer) if split is not None else None
            self._normalizer = tokenizer.normalizer
            tokenizer.normalizer = None
            if split is not None:
                tokenizer.pre_tokenizer = split
                self._split = True
            if mark is not None:
                self._start_table(tokenizer, mark, vocab, added)
            self._full = None

    def _start_table(
        self, tokenizer: Tokenizer, mark: str, vocab: dict[str, int], added: AddedTokens | None
    ) -> None:
        """A word table, and a tokenizer for its new words: the same model (shared, not
        copied) and word cut, and one more added token, a separator put between the new words
        of a text. The separator is another character and the mark: a word holds the mark only
        before its other characters, so the separator is found only where it was put."""
        words, backend = _backend.load("._words", "._words_py")
        separator = ("\x01" if mark == "\x00" else "\x00") + mark
        # No table on the pure-Python twin (it costs what the tokenizer's own cut does), nor
        # when the separator is in the vocabulary (it could not mark where words were put).
        if backend != "cython" or separator in vocab:
            return
        separated = Tokenizer(tokenizer.model)
        separated.pre_tokenizer = tokenizer.pre_tokenizer
        separated.add_special_tokens([AddedToken(separator, special=True, normalized=False)])
        sep_id = separated.token_to_id(separator)
        if sep_id is None or sep_id in vocab.values():  # ids with gaps: the new one is taken
            return
        self._separated = (separated, separator, sep_id)
        self._words = words.WordCounts(mark, WORD_TABLE_LIMIT, word_stops(tokenizer, mark, vocab))
        self._added = added

    @property
    def full(self) -> Tokenizer:
        """The tokenizer as its file defines it."""
        with self._lock:
            if self._full is None:
                full = Tokenizer.from_str(self.counting.to_str())
                full.normalizer = self._normalizer
                if self._split:
                    full.pre_tokenizer = None
                self._full = full
            return self._full

    def encode(self, texts: list[str], add_special_tokens: bool = False) -> list[Any]:
        normalise = self.normalise
        if normalise is not None:
            try:
                texts = [normalise(t) for t in texts]
            except (TypeError, AttributeError):
                bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
                if not bad:
                    raise
                raise TypeError(f"texts to count must be str, got {bad[0]}") from None
        tokenizer = self.counting
        encode = tokenizer.encode_batch_fast if _HAS_ENCODE_BATCH_FAST else tokenizer.encode_batch
        return encode(texts, add_special_tokens=add_special_tokens)  # type: ignore[no-any-return]

    def count(self, texts: list[str]) -> list[int]:
        """The token count of each text, special tokens excluded."""
        if self._words is None:
            return [len(e) for e in self.encode(texts)]
        return self.count_around_added(texts)[0]

    def count_around_added(self, texts: list[str]) -> tuple[list[int], dict[int, list[str]]]:
        """With a word table: the token count of each text, and the texts that hold an added
        token, by position, as stretch, token, ..., stretch. The tokenizer cuts the added
        tokens out first and normalises each stretch alone, as the table does a text: such a
        text's count is its stretches' counts and one per added token."""
        assert self._added is not None
        split = self._added.split
        parts_of = {}
        for i, t in enumerate(texts):
            if isinstance(t, str):
                parts = split(t)
                if parts is not None:
                    parts_of[i] = parts
        if not parts_of:
            return self._table_counts(texts), parts_of
        flat: list[str] = []
        spans = []
        for i, t in enumerate(texts):
            parts = parts_of.get(i)
            start = len(flat)
            if parts is None:
                flat.append(t)
                spans.append((start, start + 1, 0))
            else:
                flat += parts[0::2]
                spans.append((start, len(flat), len(parts) // 2))
        counts = self._table_counts(flat)
        return [sum(counts[a:b]) + k for a, b, k in spans], parts_of

    def _table_counts(self, texts: list[str]) -> list[int]:
        words = self._words
        with self._words_lock:
            new = words.scan(texts)
            try:
                counts = self._word_counts(new) if new else []
            except BaseException:
                words.clear()
                raise
            return words.totals(counts)  # type: ignore[no-any-return]

    def _word_counts(self, words: list[str]) -> list[int]:
        """The token count of each word: the words are joined many to a text, the separator
        between two, and the separator's ids in the encoding mark where each word's tokens
        end. The word cut and the separator cut the joined text at the same places as the
        words' own texts (each word's tokens are its own: see :mod:`convkit.normalise`)."""
        assert self._separated is not None
        tokenizer, separator, sep_id = self._separated
        k = _WORDS_PER_TEXT
        texts = [separator.join(words[i : i + k]) for i in range(0, len(words), k)]
        encode = tokenizer.encode_batch_fast if _HAS_ENCODE_BATCH_FAST else tokenizer.encode_batch
        counts: list[int] = []
        for e in encode(texts, add_special_tokens=False):
            ids = e.ids
            start = 0
            for _ in range(ids.count(sep_id)):
                end = ids.index(sep_id, start)
                counts.append(end - start)
                start = end + 1
            counts.append(len(ids) - start)
        if len(counts) != len(words):  # pragma: no cover - a separator the tokenizer moved
            raise AssertionError(f"{len(counts)} counts for {len(words)} words")
        return counts


#: Tokenizers loaded from files, shared by the counters built from the same file in this
#: process, most recently used last. A process that loads a new instance for every run (an
#: application calling convert once per file) keeps growing: after each instance has tokenised
#: a corpus and been dropped, the memory stays with the process (about 30 MB a run on the
#: rendered corpus with llama's tokenizer), where one instance reused stays level.
_LOADED: OrderedDict[tuple[str, int, int], _Shared] = OrderedDict()
_LOADED_MAX = 4
_LOADED_LOCK = threading.Lock()
_UNPICKLED_LOCK = threading.Lock()


def _shared_tokenizer(spec: str) -> _Shared:
    """:func:`load_tokenizer`'s tokenizer for ``spec``, the same object for the same file
    while it is unchanged (its resolved path, size and modification time: a file rewritten
    with both kept, as ``cp -p`` may, is not seen to change); hub names and errors go to
    load_tokenizer as they are."""
    if not spec:  # Path("") is the current folder: load_tokenizer refuses it by name
        return _Shared(load_tokenizer(spec), own=True)
    path = Path(spec).expanduser()
    try:
        file = path / "tokenizer.json" if path.is_dir() else path
        st = file.stat()
        key = (str(file.resolve()), st.st_size, st.st_mtime_ns)
    except (OSError, ValueError):
        return _Shared(load_tokenizer(spec), own=True)
    with _LOADED_LOCK:
        shared = _LOADED.get(key)
        if shared is not None:
            _LOADED.move_to_end(key)
            return shared
    shared = _Shared(load_tokenizer(spec), own=True)
    with _LOADED_LOCK:
        shared = _LOADED.setdefault(key, shared)
        _LOADED.move_to_end(key)
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return shared


class TokenCounter:
    """Counts the tokens of texts with one tokenizer, in batches.

    Built from a spec (see :func:`load_tokenizer`) or a loaded ``Tokenizer`` (used as is when it
    has no truncation or padding, else a neutralised copy, so the caller's object is not
    changed). Counters built from the same unchanged file in one process share one loaded
    tokenizer (see ``_LOADED``), whose normalizer they may do in Python (see
    :mod:`convkit.normalise`; the counts are the same): do not change the settings of
    :attr:`tokenizer`. Pickles small when built from a spec: a worker process re-loads the
    tokenizer from the spec on first use.
    """

    __slots__ = ("_edges", "_json", "_load_from", "_shared", "_spec")

    def __init__(self, tokenizer: str | os.PathLike[str] | Tokenizer) -> None:
        self._json: str | None = None
        self._edges: Any = _UNSET
        if isinstance(tokenizer, Tokenizer):
            self._spec: str | None = None
            self._load_from: str | None = None
            own = tokenizer.truncation is not None or tokenizer.padding is not None
            if own:
                tokenizer = _neutralise(Tokenizer.from_str(tokenizer.to_str()))
            self._shared: _Shared | None = _Shared(tokenizer, own=own)
        else:
            self._spec = os.fspath(tokenizer)
            self._shared = _shared_tokenizer(self._spec)  # fail early, in the parent
            # A worker may run in another directory: re-load a local file by its absolute path.
            local = Path(self._spec).expanduser()
            self._load_from = str(local.resolve()) if local.exists() else self._spec

    @property
    def spec(self) -> str | None:
        """The spec this counter was built from, or None when built from a Tokenizer."""
        return self._spec

    def _loaded(self) -> _Shared:
        shared = self._shared
        if shared is None:
            with _UNPICKLED_LOCK:  # two threads of an unpickled counter load it once
                shared = self._shared
                if shared is None:
                    if self._load_from is not None:
                        shared = _shared_tokenizer(self._load_from)
                    else:
                        assert self._json is not None
                        shared = _Shared(Tokenizer.from_str(self._json), own=True)
                    self._shared = shared
                    self._json = None
        return shared

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, as its file defines it (loaded on first use after unpickling)."""
        return self._loaded().full

    @property
    def special_tokens(self) -> int:
        """Tokens the post-processor adds to one sequence (e.g. 1 for llama's BOS, 0 for gpt2)."""
        return int(self._loaded().counting.num_special_tokens_to_add(False))

    @property
    def special_edges(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """The ids of the special tokens the post-processor puts before and after one sequence
        (llama: ``((1,), ())``; t5: ``((), (1,))``), or None when they do not simply surround
        it."""
        if self._edges is _UNSET:
            self._edges = _special_edges(self._loaded())
        edges: tuple[tuple[int, ...], tuple[int, ...]] | None = self._edges
        return edges

    def count_trained(self, texts: Sequence[str]) -> list[int]:
        """The token count of each text as a trainer tokenises a whole training text: with the
        special tokens the post-processor adds, except those the text already has at the same
        end. A chat template's text that starts with the tokenizer's BOS (Llama 2's ``<s>``) is
        tokenised without another (``apply_chat_template`` does so); text without one
        (Vicuna's, Alpaca's: FastChat and Stanford Alpaca tokenise it with llama's BOS added)
        gets the tokenizer's."""
        edges = self.special_edges
        if edges is None:  # added in the middle, or rewritten: count them all, the safe side
            extra = self.special_tokens
            return [n + extra for n in self.count(texts)]
        before, after = edges
        if not before and not after:
            return self.count(texts)
        nb, na = len(before), len(after)

        def trained(n: int, head: Sequence[int], tail: Sequence[int]) -> int:
            # head and tail: the ids the text starts and ends with, nb and na of them (fewer
            # when it has fewer), which the post-processor's own are added unless they are.
            return n + (nb if tuple(head) != before else 0) + (na if tuple(tail) != after else 0)

        if not isinstance(texts, list):
            texts = list(texts)
        shared = self._loaded()
        if shared._words is None or not texts:
            out = []
            for e in self._encode(texts):
                ids = e.ids
                out.append(trained(len(ids), ids[:nb], ids[max(len(ids) - na, 0) :]))
            return out
        # With a word table, no text is encoded: a special token's id comes only from its
        # added token's text (the normalizer makes none), so only the added tokens at a text's
        # ends can be the ones the post-processor would add.
        counts, parts_of = shared.count_around_added(texts)
        ids = shared._added.ids  # type: ignore[union-attr]
        out = [n + nb + na for n in counts]
        for i, parts in parts_of.items():
            lead = []  # the ids of the added tokens the text starts with, stretches empty
            for j in range(1, len(parts), 2):
                if parts[j - 1]:
                    break
                lead.append(ids[parts[j]])
            trail = []
            for j in range(len(parts) - 2, 0, -2):
                if parts[j + 1]:
                    break
                trail.append(ids[parts[j]])
            trail.reverse()
            out[i] = trained(counts[i], lead[:nb], trail[max(len(trail) - na, 0) :])
        return out

    def count(self, texts: Sequence[str]) -> list[int]:
        """The token count of each text, special tokens excluded, in one batched call."""
        if not isinstance(texts, list):
            texts = list(texts)
        if not texts:
            return []
        return self._loaded().count(texts)

    def _encode(self, texts: Sequence[str]) -> list[Any]:
        """The encodings of ``texts``, without special tokens, in one batched call."""
        if not isinstance(texts, list):
            texts = list(texts)
        if not texts:
            return []
        return self._loaded().encode(texts)

    def __getstate__(self) -> dict[str, Any]:
        if self._spec is not None:
            return {"spec": self._spec, "load_from": self._load_from}
        return {"json": self._json if self._shared is None else self._shared.full.to_str()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._edges = _UNSET
        self._spec = state.get("spec")
        self._load_from = state.get("load_from")
        self._json = state.get("json")
        self._shared = None

    def __repr__(self) -> str:
        source = repr(self._spec) if self._spec is not None else "<Tokenizer>"
        return f"TokenCounter({source})"
