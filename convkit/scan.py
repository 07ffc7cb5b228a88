"""The byte and character scans of the reader, of dedup and of the blocked-phrase filter:
compiled (:mod:`convkit._scan`) or its pure-Python twin; ``BACKEND`` says which. Chosen here,
once, as :mod:`convkit.split` chooses its core (see :mod:`convkit._backend`)."""

from __future__ import annotations

from ._backend import load

_scan, BACKEND = load("._scan", "._scan_py")
element_end = _scan.element_end
has_long_number = _scan.has_long_number
normalised_utf8 = _scan.normalised_utf8
contains_folded = _scan.contains_folded
content_frames = _scan.content_frames
count_newlines = _scan.count_newlines

__all__ = [
    "BACKEND",
    "contains_folded",
    "content_frames",
    "count_newlines",
    "element_end",
    "has_long_number",
    "normalised_utf8",
]
