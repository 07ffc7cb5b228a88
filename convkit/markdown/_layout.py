"""Markers in converted text, and the last step of the reference engine that resolves them.

Three markers travel through the per-element conversion because only later text knows what
surrounds them. They are Unicode noncharacters (reserved for internal use) and are removed
from the input before parsing, so they can only come from the converter.

* ``CODE`` starts every line of a fenced code block (after any list indent or ``> `` that a
  container put in front). Code lines are kept byte for byte; only a blank code line loses the
  container prefix's trailing spaces.
* ``BREAK`` ends a line that had a ``<br>``. It becomes a backslash hard break when the next line
  continues the same block, and disappears when the block ends there (a trailing ``\\`` would be
  a literal backslash).
* ``SOFT`` ends a line where the HTML text had a newline (a soft line break, kept because it is
  how the model wrote its answer). :func:`soft_breaks` turns it into a space instead when the
  next line would start a block (list item, heading, quote, fence, HTML, rule or setext
  underline) or the line ends with a backslash (a hard break), so that text never turns into
  markup.
"""
from __future__ import annotations

import re

__all__ = ["BREAK", "CODE", "MARKERS", "SOFT", "finish", "soft_breaks"]

CODE = "\ufdd0"
BREAK = "\ufdd1"
SOFT = "\ufdd2"
MARKERS = (CODE, BREAK, SOFT)

# Line starts that can interrupt a paragraph (CommonMark 0.31, taken broadly for list items so
# that other renderers agree), so a soft break before them would change the document.
_HTML_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    "details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    "h[1-6]|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|"
    "optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|"
    "track|ul"
)
_INTERRUPTS = re.compile(
    r"(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)"  # list item
    r"|#{1,6}(?:[ \t]|$)"  # ATX heading
    r"|>|```|~~~"  # block quote, fence
    r"|<(?:script|pre|style|textarea)(?:[ \t>]|$)|<!--|<\?|<![A-Za-z]|<!\[CDATA\["
    rf"|</?(?:{_HTML_BLOCK_TAGS})(?:[ \t>]|/>|$)",  # HTML blocks 1-6
    re.IGNORECASE,
)
_WHOLE_LINE_BLOCK = re.compile(r"=+[ \t]*|-+[ \t]*|(?:[-*_][ \t]*){3,}")  # setext, rule
_SOFT_BREAK = SOFT + "\n"
# Every line either pattern matches starts with one of these or with a decimal digit (\d is
# Unicode's Nd, as str.isdecimal): other lines are decided without running them.
_BLOCK_FIRST = frozenset("-+*#>`~<=_")


def soft_breaks(text: str) -> str:
    """Resolve ``SOFT`` line ends of one block's text: a newline, or a space before a block."""
    if SOFT not in text:
        return text
    pieces = text.split(_SOFT_BREAK)
    out = [pieces[0]]
    for piece in pieces[1:]:
        first = piece[:1]
        interrupts = None
        if first in _BLOCK_FIRST or first.isdecimal():
            line = piece.partition("\n")[0].rstrip(BREAK + " ")
            interrupts = _INTERRUPTS.match(line) or _WHOLE_LINE_BLOCK.fullmatch(line)
        # A backslash before a line end would make a hard break out of literal text.
        out.append(" " if interrupts or out[-1][-1:] == "\\" else "\n")
        out.append(piece)
    return "".join(out).replace(SOFT, "")


def _blank(line: str) -> bool:
    # A line of only quote markers is an empty line inside a blockquote.
    return line.strip(" >") == ""


def finish(text: str) -> str:
    """Resolve markers, drop trailing spaces, keep at most one blank line in a row, strip."""
    lines = soft_breaks(text).split("\n")
    out: list[str] = []
    last_blank: str | None = None  # the previous output line, when it was a blank prose line
    for i, line in enumerate(lines):
        at = line.find(CODE)
        if at >= 0:
            # No BREAK belongs to code: one here is a <br> of text that broken markup left on
            # the line of a closing fence.
            prefix, code = line[:at], line[at + 1:].replace(CODE, "").replace(BREAK, "")
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
