"""The pure-Python twin of :mod:`convkit._scan` (fallback and test oracle)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "bind_sha256",
    "contains_folded",
    "content_frames",
    "count_newlines",
    "element_end",
    "has_long_number",
    "normalised_utf8",
]


#: Digits in a row from which orjson may not keep an integer exact (it returns a float for one
#: beyond 64 bits); 19 digits reach 2**63.
LONG_NUMBER = 19


def element_end(
    buf: bytes | bytearray, i: int, depth: int, long_number: bool = False
) -> tuple[int, int, int, bool]:
    """Where the JSON array element being scanned ends.

    Scans ``buf`` from ``i`` (outside any string) with ``depth`` brackets open. Returns
    ``(end, resume, depth, long_number)``: ``end`` is the position after the bracket that
    closes the element (or, at depth 0, after the closing quote of a string element), or -1
    when the buffer ends first; scanning then goes on from ``resume`` with ``depth`` and
    ``long_number`` once more bytes arrive (``resume`` is the start of a string, or of a run of
    digits, that the buffer cuts; else the buffer's end). ``long_number`` says whether a run of
    :data:`LONG_NUMBER` or more digits occurs outside strings: orjson turns an integer beyond
    64 bits into a float, so such an element is for the standard decoder.

    Only brackets, string bounds and digits are looked at: whether the element is valid JSON is
    for the decoder to say (a mismatched bracket ends the element early, and the decoder then
    fails).
    """
    n = len(buf)
    if i < 0 or i > n or depth < 0:
        raise ValueError(f"bad scan state: position {i} of {n}, depth {depth}")
    digits = 0
    while i < n:
        c = buf[i]
        if 0x30 <= c <= 0x39:
            digits += 1
            if digits >= LONG_NUMBER:
                long_number = True
            i += 1
            continue
        digits = 0
        if c == 0x22:
            start = i
            i += 1
            while i < n:
                c = buf[i]
                if c == 0x5C:
                    i += 2
                elif c == 0x22:
                    break
                else:
                    i += 1
            if i >= n:
                return -1, start, depth, long_number
            if depth <= 0:  # a string element: its closing quote ends it
                return i + 1, i + 1, 0, long_number
        elif c == 0x7B or c == 0x5B:
            depth += 1
        elif c == 0x7D or c == 0x5D:
            depth -= 1
            if depth <= 0:
                return i + 1, i + 1, 0, long_number
        i += 1
    return -1, n - digits, depth, long_number


def count_newlines(buf: bytes | bytearray, start: int, end: int) -> int:
    """How many new lines (``\\n``) ``buf[start:end]`` holds; the range must lie in ``buf``."""
    n = len(buf)
    if start < 0 or end > n or start > end:
        raise ValueError(f"bad range: {start} to {end} of {n}")
    return buf.count(b"\n", start, end)


def has_long_number(buf: bytes | bytearray) -> bool:
    """Whether ``buf`` holds a run of :data:`LONG_NUMBER` or more ASCII digits anywhere,
    strings included. A JSON Lines record without one cannot hold an integer orjson would turn
    into a float; one with one (a long id string, say) goes to the standard decoder, which
    costs time, never correctness."""
    run = 0
    for c in buf:
        if 0x30 <= c <= 0x39:
            run += 1
            if run >= LONG_NUMBER:
                return True
        else:
            run = 0
    return False


def normalised_utf8(text: str) -> bytes:
    """The text as dedup hashes it: white space stripped at both ends, every inner run of white
    space (as ``str.split`` sees it: Unicode spaces included) made one space, UTF-8 encoded with
    lone surrogates kept (JSON can carry them)."""
    return " ".join(text.split()).encode("utf-8", "surrogatepass")


def content_frames(
    turns: Iterable[Any],
    extras_of: Callable[[Any], bytes | None],
    known: dict[int, tuple[str, bytes]] | None = None,
) -> bytes:
    """The bytes dedup hashes for ``turns`` (objects with ``role``, ``content`` and ``meta``):
    for each turn, its role in UTF-8, prefixed with its length as 8 big-endian bytes, then 32
    (with the top bit set when a block of extras follows) as 8 such bytes and the SHA-256
    digest of its normalised content (:func:`normalised_utf8`); for a turn with metadata whose
    ``extras_of(turn)`` gives bytes, those bytes follow, length-prefixed. ``known``: digests
    already computed (by the HTML converter thread), as ``{id(content): (content, digest)}``.

    A digest per turn, not the text itself: the converter thread hashes the turns it converts
    while they are still bytes, so that the thread filtering them does not."""
    out = []
    for t in turns:
        role, content = t.role, t.content
        if not isinstance(role, str):
            raise TypeError(f"expected a str role, got {type(role).__name__}")
        if not isinstance(content, str):
            raise TypeError(f"expected a str, got {type(content).__name__}")
        name = role.encode("utf-8", "surrogatepass")
        extras = extras_of(t) if t.meta else None
        if extras is not None and type(extras) is not bytes:
            raise TypeError(f"expected extras as bytes, got {type(extras).__name__}")
        hit = None if known is None else known.get(id(content))
        if hit is not None and hit[0] is content:
            digest = hit[1]
            if type(digest) is not bytes or len(digest) != 32:
                raise ValueError("a known digest is not 32 bytes")
        else:
            digest = hashlib.sha256(normalised_utf8(content)).digest()
        out += (len(name).to_bytes(8, "big"), name)
        if extras is None:
            out += ((32).to_bytes(8, "big"), digest)
            continue
        out += ((32 | 1 << 63).to_bytes(8, "big"), digest, len(extras).to_bytes(8, "big"))
        out.append(extras)
    return b"".join(out)


def bind_sha256(functions: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """The compiled module's switch between libcrypto and hashlib; here always hashlib."""
    return None


def contains_folded(text: str, words: Iterable[str]) -> bool:
    """Whether one of ``words`` (ASCII) occurs in ``text.casefold()`` (which for an ASCII
    text is ``text.lower()``)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    words = tuple(words)
    for w in words:
        if not isinstance(w, str) or not w.isascii():
            raise ValueError(f"expected ASCII words, got {w!r}")
    folded = text.lower() if text.isascii() else text.casefold()
    for w in words:
        if w in folded:
            return True
    return False
