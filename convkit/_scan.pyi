"""Type stubs of the compiled scans (see ``_scan_py.py``, their pure-Python twin)."""

__all__ = ["element_end", "normalised_utf8"]

def element_end(buf: bytes | bytearray, i: int, depth: int) -> tuple[int, int, int]:
    """Where the JSON array element being scanned ends: ``(end or -1, resume, depth)``."""

def normalised_utf8(text: str) -> bytes:
    """``" ".join(text.split()).encode("utf-8", "surrogatepass")`` in one pass."""
