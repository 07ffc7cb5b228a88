"""The byte and character scans of the reader and of dedup: compiled (:mod:`convkit._scan`) or
its pure-Python twin; ``BACKEND`` says which. Chosen here, once, as :mod:`convkit.split`
chooses its core (see :mod:`convkit._backend`)."""

from __future__ import annotations

from ._backend import load

_scan, BACKEND = load("._scan", "._scan_py")
element_end = _scan.element_end
has_long_number = _scan.has_long_number
normalised_utf8 = _scan.normalised_utf8

__all__ = ["BACKEND", "element_end", "has_long_number", "normalised_utf8"]
