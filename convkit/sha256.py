"""SHA-256 for compiled code that runs without the GIL: OpenSSL's ``SHA256_*`` calls.

hashlib needs the GIL to be called, so a thread that never takes it (the HTML converter
thread, :class:`convkit.markdown._fast.BatchConverter`) cannot use it. The libcrypto that
hashlib itself runs on is already loaded in the process; its ``SHA256_Init``,
``SHA256_Update`` and ``SHA256_Final`` (the same in OpenSSL 1.0 to 3.x; deprecated in 3.0 but
kept, and unlike the one-shot ``SHA256`` they do not look the algorithm up on every call)
compute what hashlib does, on the same hardware paths. This module finds them through
hashlib's own extension module (``dlsym`` searches the libraries a library depends on), never
loading a library, and checks them against hashlib before giving them out. Where they are not
found (a Python whose hashlib links OpenSSL statically, or Windows, where a module's imports
are not searched) callers hash with hashlib instead: the digests are the same, only where the
time is spent differs. The search takes a dlopen and three dlsym calls: it once read
``/proc/self/maps`` through ctypes, 3 ms of every new process.
"""
from __future__ import annotations

import functools
import hashlib

__all__ = ["functions"]

_PROBE = b"convkit"
_NAMES = ("SHA256_Init", "SHA256_Update", "SHA256_Final")


@functools.cache
def functions() -> tuple[int, int, int] | None:
    """The addresses of ``SHA256_Init``, ``SHA256_Update`` and ``SHA256_Final`` that give
    hashlib's digests, or None."""
    try:
        import _hashlib

        from ._scan import sha256_by, symbols
    except ImportError:  # a Python without OpenSSL, or the compiled scans not built
        return None
    path = getattr(_hashlib, "__file__", None)  # none when built into the interpreter
    found = symbols(path, _NAMES) if path else None
    if found is None or sha256_by(found, _PROBE) != hashlib.sha256(_PROBE).digest():
        return None
    return found
