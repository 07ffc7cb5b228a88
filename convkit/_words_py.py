"""Pure-Python twin of ``_words.pyx`` (same behaviour; its test oracle).

convkit counts without a word table when the extension is not built (``tokens._Shared``): in
Python, cutting a text into word objects costs about what the tokenizer's own cut does.
"""

from __future__ import annotations

__all__ = ["WordCounts"]


class WordCounts:
    """Word → token count for one tokenizer, holding at most about ``limit`` words."""

    def __init__(self, mark: str, limit: int = 1 << 18, stops: bytes | None = None) -> None:
        if len(mark) != 1:
            raise ValueError(f"the mark must be one character, got {mark!r}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if stops is not None and len(stops) != 8192:
            raise ValueError(f"stops must be 8192 bytes, got {len(stops)}")
        self.stops = bytes(8192) if stops is None else bytes(stops)
        self.mark = mark
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._new: list[str] = []
        self._words: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self._counts) + len(self._new)

    def clear(self) -> None:
        self._counts = {}
        self._new = []
        self._words = None

    def _stop(self, c: str) -> bool:
        o = ord(c)
        return o < 0x10000 and bool(self.stops[o >> 3] >> (o & 7) & 1)

    def _cut(self, text: str) -> list[str]:
        """The words of ``text``: a run of marks and the characters up to the next mark or
        stop, or a stop alone."""
        mark = self.mark
        normalised = mark + text.replace(" ", mark) if text else ""
        words: list[str] = []
        word = ""
        for c in normalised:
            if c == mark:
                if word and word[-1] != mark:
                    words.append(word)
                    word = ""
                word += c
            elif self._stop(c):
                if word:
                    words.append(word)
                    word = ""
                words.append(c)
            else:
                word += c
        if word:
            words.append(word)
        return words

    def scan(self, texts: list[str]) -> list[str]:
        if self._words is not None or len(self._counts) > self.limit:
            self.clear()
        cut = []
        for text in texts:
            if not isinstance(text, str):
                self.clear()
                raise TypeError(f"texts to count must be str, got {type(text).__name__}")
            cut.append(self._cut(text))
        new: dict[str, None] = {}
        for words in cut:
            for word in words:
                if word not in self._counts:
                    new[word] = None
        self._new = list(new)
        self._words = cut
        return list(self._new)

    def totals(self, counts: list[int]) -> list[int]:
        if self._words is None:
            raise RuntimeError("totals() needs a scan() first")
        if len(counts) != len(self._new):
            expected = len(self._new)
            self.clear()
            raise ValueError(f"expected {expected} counts, got {len(counts)}")
        for c in counts:
            if not 0 <= c <= 0x7FFFFFFF:
                self.clear()
                raise ValueError(f"a token count must be in 0..2**31-1, got {c}")
        self._counts.update(zip(self._new, counts))
        get = self._counts.__getitem__
        out = [sum(map(get, words)) for words in self._words]
        self._new = []
        self._words = None
        return out
