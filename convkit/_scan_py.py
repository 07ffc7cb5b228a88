"""The pure-Python twin of :mod:`convkit._scan` (fallback and test oracle)."""

from __future__ import annotations

__all__ = ["element_end", "normalised_utf8"]


def element_end(buf: bytes | bytearray, i: int, depth: int) -> tuple[int, int, int]:
    """Where the JSON array element being scanned ends.

    Scans ``buf`` from ``i`` (outside any string) with ``depth`` brackets open. Returns
    ``(end, resume, depth)``: ``end`` is the position after the bracket that closes the element
    (or, at depth 0, after the closing quote of a string element), or -1 when the buffer ends
    first; scanning then goes on from ``resume`` with ``depth`` once
    more bytes arrive (``resume`` is the start of a string the buffer cuts, else its end).

    Only brackets and string bounds are looked at: whether the element is valid JSON is for the
    decoder to say (a mismatched bracket ends the element early, and the decoder then fails).
    """
    n = len(buf)
    if i < 0 or i > n or depth < 0:
        raise ValueError(f"bad scan state: position {i} of {n}, depth {depth}")
    while i < n:
        c = buf[i]
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
                return -1, start, depth
            if depth <= 0:  # a string element: its closing quote ends it
                return i + 1, i + 1, 0
        elif c == 0x7B or c == 0x5B:
            depth += 1
        elif c == 0x7D or c == 0x5D:
            depth -= 1
            if depth <= 0:
                return i + 1, i + 1, 0
        i += 1
    return -1, n, depth


def normalised_utf8(text: str) -> bytes:
    """The text as dedup hashes it: white space stripped at both ends, every inner run of white
    space (as ``str.split`` sees it: Unicode spaces included) made one space, UTF-8 encoded with
    lone surrogates kept (JSON can carry them)."""
    return " ".join(text.split()).encode("utf-8", "surrogatepass")
