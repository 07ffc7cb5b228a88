"""The last step of the reference engine: from converted text with markers to the final string.

Two markers travel through the per-element conversion because only the final text knows what
surrounds them. Both are Unicode noncharacters (reserved for internal use); they are removed
from the input before parsing, so they can only come from the converter.

* ``CODE`` starts every line of a fenced code block (after any list indent or ``> `` that a
  container put in front). Code lines are kept byte for byte; only a blank code line loses the
  container prefix's trailing spaces.
* ``BREAK`` ends a line that had a ``<br>``. It becomes a backslash hard break when the next line
  continues the same block, and disappears when the block ends there (a trailing ``\\`` would be
  a literal backslash).
"""
from __future__ import annotations

__all__ = ["BREAK", "CODE", "MARKERS", "finish"]

CODE = "\ufdd0"
BREAK = "\ufdd1"
MARKERS = (CODE, BREAK)


def _blank(line: str) -> bool:
    # A line of only quote markers is an empty line inside a blockquote.
    return line.strip(" >") == ""


def finish(text: str) -> str:
    """Resolve markers, drop trailing spaces, keep at most one blank line in a row, strip."""
    lines = text.split("\n")
    out: list[str] = []
    last_blank: str | None = None  # the previous output line, when it was a blank prose line
    for i, line in enumerate(lines):
        at = line.find(CODE)
        if at >= 0:
            prefix, code = line[:at], line[at + 1:].replace(CODE, "")
            out.append(prefix + code if code else prefix.rstrip(" "))
            last_blank = None
            continue
        line = line.rstrip(" \t")
        if line.endswith(BREAK):
            line = line[:-1].rstrip(" \t")
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not _blank(following) and CODE not in following:
                line += "\\"
        line = line.replace(BREAK, "")
        if _blank(line):
            line = line.rstrip(" ")
            if not out or line == last_blank:
                continue
            last_blank = line
        else:
            last_blank = None
        out.append(line)
    if last_blank is not None:
        out.pop()
    return "\n".join(out).strip(" \n")
