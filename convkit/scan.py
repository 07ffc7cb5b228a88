"""The byte and character scans of the reader and of dedup: compiled (:mod:`convkit._scan`) or
its pure-Python twin; ``BACKEND`` says which. Chosen here, once, as :mod:`convkit.split`
chooses its core: ``CONVKIT_PUREPYTHON=1`` forces the twin."""

from __future__ import annotations

import os

if os.environ.get("CONVKIT_PUREPYTHON", "") not in ("", "0"):
    from ._scan_py import element_end, has_long_number, normalised_utf8

    BACKEND = "python"
else:
    try:
        from ._scan import element_end, has_long_number, normalised_utf8

        BACKEND = "cython"
    except ImportError:
        from ._scan_py import element_end, has_long_number, normalised_utf8

        BACKEND = "python"

__all__ = ["BACKEND", "element_end", "has_long_number", "normalised_utf8"]
