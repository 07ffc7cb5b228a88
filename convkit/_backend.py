"""Which implementation a compiled module runs with: the extension, or its pure-Python twin.

``CONVKIT_PUREPYTHON=1`` forces the twins (as msgpack's ``MSGPACK_PUREPYTHON`` does); otherwise a
twin is used only when its extension is not built.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def pure_python() -> bool:
    """Whether ``CONVKIT_PUREPYTHON`` asks for the pure-Python twins."""
    return os.environ.get("CONVKIT_PUREPYTHON", "") not in ("", "0")


def load(compiled: str, twin: str) -> tuple[ModuleType, str]:
    """The module to use, ``compiled`` or ``twin`` (names relative to ``convkit``), and
    ``"cython"`` or ``"python"`` saying which."""
    if not pure_python():
        try:
            return importlib.import_module(compiled, __package__), "cython"
        except ImportError:
            pass
    return importlib.import_module(twin, __package__), "python"
