"""SHA-256 for compiled code that runs without the GIL: OpenSSL's ``SHA256_*`` calls.

hashlib needs the GIL to be called, so a thread that never takes it (the HTML converter
thread, :class:`convkit.markdown._fast.BatchConverter`) cannot use it. The libcrypto that
hashlib itself runs on is already loaded in the process; its ``SHA256_Init``,
``SHA256_Update`` and ``SHA256_Final`` (the same in OpenSSL 1.0 to 3.x; deprecated in 3.0 but
kept, and unlike the one-shot ``SHA256`` they do not look the algorithm up on every call)
compute what hashlib does, on the same hardware paths. This module finds them there, never
loading a library of its own, and checks them against hashlib before giving them out. Where it is not found (a Python whose hashlib links OpenSSL statically,
or a platform without ``/proc/self/maps``) callers hash with hashlib instead: the digests are
the same, only where the time is spent differs.
"""
from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

__all__ = ["functions"]

_PROBE = b"convkit"
_lib: Any = None  # the library, held while its functions' addresses are in use


@functools.cache
def functions() -> tuple[int, int, int] | None:
    """The addresses of ``SHA256_Init``, ``SHA256_Update`` and ``SHA256_Final`` that give
    hashlib's digests, or None."""
    global _lib
    try:
        import _hashlib  # noqa: F401 - loads the libcrypto hashlib uses
        import ctypes
    except ImportError:
        return None
    for path in _loaded_libcrypto():
        try:
            # RTLD_NOLOAD: only the library already in the process, never another one.
            lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_NOLOAD)
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        context = ctypes.create_string_buffer(256)  # SHA256_CTX is 112 bytes
        out = ctypes.create_string_buffer(32)
        init(context)
        update(context, ctypes.c_char_p(_PROBE), ctypes.c_size_t(len(_PROBE)))
        final(out, context)
        if out.raw == hashlib.sha256(_PROBE).digest():
            _lib = lib
            return tuple(ctypes.cast(f, ctypes.c_void_p).value for f in (init, update, final))
    return None


def _loaded_libcrypto() -> list[str]:
    """The paths of the libcrypto libraries mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except OSError:
        return []
    paths: list[str] = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)  # address, perms, offset, dev, inode, path
        path = fields[5].strip() if len(fields) == 6 else ""
        if os.path.basename(path).startswith("libcrypto") and path not in paths:
            paths.append(path)
    return paths
