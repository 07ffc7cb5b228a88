"""Type stubs of the compiled scans (see ``_scan_py.py``, their pure-Python twin)."""

from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "bind_sha256",
    "contains_folded",
    "content_frames",
    "count_newlines",
    "digest_function",
    "element_end",
    "has_long_number",
    "normalised_utf8",
]

def element_end(
    buf: bytes | bytearray, i: int, depth: int, long_number: bool = False
) -> tuple[int, int, int, bool]:
    """Where the JSON array element being scanned ends: ``(end or -1, resume, depth,
    long_number)``."""

def count_newlines(buf: bytes | bytearray, start: int, end: int) -> int:
    """How many new lines ``buf[start:end]`` holds."""

def has_long_number(buf: bytes | bytearray) -> bool:
    """Whether ``buf`` holds a run of 19 or more ASCII digits anywhere (strings included)."""

def normalised_utf8(text: str) -> bytes:
    """``" ".join(text.split()).encode("utf-8", "surrogatepass")`` in one pass."""

def content_frames(
    turns: Iterable[Any],
    extras_of: Callable[[Any], bytes | None],
    known: dict[int, tuple[str, bytes]] | None = None,
) -> bytes:
    """The bytes dedup hashes for ``turns``: role and normalised content's SHA-256 of each,
    length-prefixed (see ``_scan_py.content_frames``)."""

def bind_sha256(functions: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """Hash with libcrypto's ``(SHA256_Init, SHA256_Update, SHA256_Final)`` at these
    addresses, or with hashlib when None; the addresses bound before."""

def symbols(path: str, names: Iterable[str]) -> tuple[int, ...] | None:
    """The addresses of ``names`` in the library at ``path``, already loaded, or None."""

def sha256_by(functions: tuple[int, int, int], data: bytes) -> bytes:
    """SHA-256 of ``data`` by ``(SHA256_Init, SHA256_Update, SHA256_Final)`` at these addresses."""

def digest_function() -> int | None:
    """The address of the nogil C function that hashes a UTF-8 text as dedup does, or None."""

def contains_folded(text: str, words: Iterable[str]) -> bool:
    """Whether one of ``words`` (ASCII) occurs in ``text.casefold()``."""
