"""Build of convkit's compiled extensions; all other metadata lives in pyproject.toml.

Compiler directives are set here, once, for every extension. ``CONVKIT_DEBUG=1`` at build time
turns bounds checking back on (an out-of-range index then raises IndexError instead of reading
past a buffer). To add an extension, append one ``Extension`` to EXTENSIONS.
"""

from __future__ import annotations

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CONVKIT_DEBUG", "") not in ("", "0")

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    # Stays off in debug builds too: a negative index is then an IndexError, not a wrap-around.
    "wraparound": False,
    "embedsignature": True,
}

# convkit/_dl.h finds functions in libraries already loaded (dlsym; libdl for glibc < 2.34).
DL = {
    "include_dirs": ["convkit"],
    "libraries": ["dl"] if sys.platform.startswith("linux") else [],
}

EXTENSIONS = [
    Extension("convkit._fastsplit", ["convkit/_fastsplit.pyx"]),
    # libcrypto's SHA-256 is found through hashlib's module (see convkit/sha256.py).
    Extension("convkit._scan", ["convkit/_scan.pyx"], **DL),
    Extension("convkit._words", ["convkit/_words.pyx"]),
    # Walks selectolax's lexbor tree. No lexbor headers or library are needed: the node layout
    # is declared in the .pyx and lexbor's functions are found in selectolax's module at import.
    # See convkit/markdown/fast.py.
    Extension("convkit.markdown._fast", ["convkit/markdown/_fast.pyx"], **DL),
]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        compiler_directives=COMPILER_DIRECTIVES,
        # Generated C goes out of the source tree, one folder per mode, so that switching
        # CONVKIT_DEBUG on or off never reuses C generated with the other directives.
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython"),
    ),
)
