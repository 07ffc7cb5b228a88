"""The iterative walk of the reference engine over a lexbor tree.

markdownify recurses once per element level, so 100,000 nested tags end in RecursionError; this
walk keeps its own stack instead and calls the converter's ``convert_<tag>`` functions as
elements close, with markdownify's ``(el, text, parent_tags)`` convention. It also owns what
depends on document order rather than on one element: white-space collapsing, list numbering,
table rows, the depth cap and the positional noise rules of :mod:`convkit.markdown.noise`.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._layout import BREAK, SOFT
from ._lexbor import attributes, code_block, is_katex_drawing, no_markers, tex_of
from .noise import CHROME_TAGS, DROPPED_TAGS, is_copy_stats, is_regeneration_counter

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

    from .reference import ReferenceConverter

__all__ = ["BLOCK_TAGS", "MAX_DEPTH", "MAX_TABLE_CELLS", "Element", "Walk"]

# Elements nested deeper than this are replaced by their content (text and deeper children).
# Real ChatGPT pages stay under 20; the cap bounds the cost of re-indenting nested lists and
# quotes, which grows with depth times text length.
MAX_DEPTH = 64

# A table whose padded grid (rows times its widest row, colspans counted) is larger is written
# as its text: colspan="1000" cells and a few thousand rows would otherwise pad a 40 KB message
# into gigabytes of empty cells.
MAX_TABLE_CELLS = 100_000

# Elements that start and end a block: white space around them is dropped, and a <br> right
# after a boundary has nothing to break.
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr",
        "html", "legend", "li", "listing", "main", "menu", "nav", "ol", "p", "plaintext",
        "search", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "ul", "xmp"
    }
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_INLINE_CONTEXT = HEADINGS | {"td", "th"}
_NOFORMAT_CONTEXT = frozenset({"code", "kbd", "samp"})
_ROW_GROUPS = frozenset({"thead", "tbody", "tfoot"})
_TABLE_STRUCTURE = _ROW_GROUPS | {"table", "tr"}

_HTML_SPACE = " \t\n\r\f"
_HTML_SPACE_RUN = re.compile(r"[ \t\n\r\f]+")
_TRAILING = " \n" + SOFT
_HARD_BREAK = BREAK + "\n"
_CODE_SPAN_TAGS = _NOFORMAT_CONTEXT
_START_NUMBER = re.compile(r"[ \t\n\r\f]*(\d{1,9})[ \t\n\r\f]*")

# White-space state, as CSS collapses it: at the start of a block, after a space, after text,
# right after a hard break.
_AT_START, _AFTER_SPACE, _AFTER_TEXT, _AFTER_BREAK = 0, 1, 2, 3


class Element:
    """The part of an element the converter functions see (a stand-in for a bs4 ``Tag``)."""

    __slots__ = ("attrs", "marker", "name", "parent")

    def __init__(self, name: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.name = name
        self.attrs = attrs
        self.parent = parent
        self.marker = ""  # list items: "-" or "3."

    def get(self, key: str, default: str | None = None) -> str | None:
        """An attribute value, like ``Tag.get``; boolean attributes give ``""``."""
        value = self.attrs.get(key, default)
        return "" if value is None and key in self.attrs else value


class _Frame:
    """An open element: its converted children so far and the bookkeeping of its children."""

    __slots__ = (
        "caption", "cells", "counter", "el", "ol_next", "parent_tags", "parts", "pres_since",
        "rows", "tags", "tail_code",
    )

    def __init__(self, el: Element, tags: frozenset[str], parent_tags: frozenset[str]) -> None:
        self.el = el
        self.tags = tags  # parent_tags for the children
        self.parent_tags = parent_tags
        self.parts: list[str] = []
        self.rows: list[list[tuple[str, int]]] = []
        self.cells: list[tuple[str, int]] = []
        self.caption = ""
        self.counter = 1  # <ol>: number of the next item
        self.ol_next: int | None = None  # a closed child <ol> whose numbering may go on
        self.pres_since = 0  # <pre> children since that <ol>
        self.tail_code = False  # the last part is an inline code span


def _collapse(match: re.Match[str]) -> str:
    # A run with a newline is a soft line break (resolved by _layout.soft_breaks).
    return SOFT + "\n" if "\n" in match.group() else " "


def _start_number(value: str | None) -> int | None:
    m = _START_NUMBER.fullmatch(value) if value else None
    return int(m.group(1)) if m else None


def _colspan(value: str | None) -> int:
    m = _START_NUMBER.match(value) if value else None
    # The HTML table model clamps colspan to 1..1000.
    return min(max(int(m.group(1)), 1), 1000) if m else 1


class Walk:
    """One conversion: walk the nodes after ``first`` and return the converted text."""

    def __init__(self, converter: ReferenceConverter) -> None:
        self.conv = converter
        root = Element("[document]", {}, None)
        self.frames = [_Frame(root, frozenset(), frozenset())]
        self.ws = _AT_START
        self.content_depth = 0  # open ancestors that are not div/span (chrome can't be there)
        self.seen_content = False  # for the regeneration counter: only before any content

    def run(self, first: LexborNode) -> str:
        """Convert ``first`` and its following siblings (a parsed fragment)."""
        stack: list[tuple[_Frame | None, bool]] = []
        node: LexborNode | None = first
        while node is not None:
            tag = node.tag
            entered = None
            if tag == "-text":
                self._text(no_markers(node.text_content or ""))
            elif tag and tag[0] not in "-!":
                entered = self._enter(node, tag, len(stack))
            if entered is not None:
                if node.child is not None:
                    stack.append(entered)
                    node = node.child
                    continue
                self._leave(entered)
            while True:
                following = node.next
                if following is not None:
                    node = following
                    break
                if not stack:
                    node = None
                    break
                node = node.parent
                self._leave(stack.pop())
        return "".join(self.frames[0].parts)

    # -- entering and leaving elements --------------------------------------------------

    def _enter(self, node: LexborNode, name: str, depth: int) -> tuple[_Frame | None, bool] | None:
        if name in DROPPED_TAGS:
            return None
        is_content = name not in CHROME_TAGS
        if depth >= MAX_DEPTH:
            self.content_depth += is_content
            return None, is_content
        frame = self.frames[-1]
        if name == "pre":
            self._code_block(frame, *code_block(node))
            return None
        attrs = attributes(node)
        classes = attrs.get("class") or ""
        if "katex" in classes or name == "math":
            math = tex_of(node, name)
            if math is not None:
                self._math(frame, *math)
                return None
            if is_katex_drawing(node, classes):
                return None
        el = Element(name, attrs, frame.el)
        tags = frame.tags | {name}
        # A table's caption is laid out on one line, as a cell is (its <br> a space, its <pre>
        # a code span): a line break there left its marker in the output.
        if name in _INLINE_CONTEXT or (name == "caption" and frame.el.name == "table"):
            tags |= {"_inline"}
        elif name in _NOFORMAT_CONTEXT:
            tags |= {"_noformat"}
        new = _Frame(el, tags, frame.tags)
        if name == "ol":
            new.counter = self._ol_start(el, frame)
        elif name == "li":
            if frame.el.name == "ol":
                el.marker = f"{frame.counter}."
                frame.counter += 1
            else:
                el.marker = "-"
        if name in BLOCK_TAGS:
            self._block_boundary(frame)
        self.frames.append(new)
        self.content_depth += is_content
        return new, is_content

    @staticmethod
    def _ol_start(el: Element, parent: _Frame) -> int:
        start = _start_number(el.get("start"))
        if start is not None:
            return start
        # The scraped pages restart numbering after a code block (no start attribute): a list
        # whose previous siblings are only <pre> back to an earlier <ol> continues that list.
        if parent.ol_next is not None and parent.pres_since:
            return parent.ol_next
        return 1

    def _leave(self, entered: tuple[_Frame | None, bool]) -> None:
        frame, is_content = entered
        self.content_depth -= is_content
        if frame is None:
            return
        self.frames.pop()
        parent = self.frames[-1]
        el = frame.el
        name = el.name
        if name in BLOCK_TAGS:
            self._block_boundary(frame)
        text = "".join(frame.parts)
        if name == "ol":
            parent.ol_next, parent.pres_since = frame.counter, 0
        else:
            parent.ol_next = None
        if name in ("td", "th"):
            cell = self.conv.convert_cell(el, text, frame.parent_tags)
            if parent.el.name == "tr":
                parent.cells.append((cell, _colspan(el.get("colspan"))))
            else:
                self._add(parent, f" {cell} ")
        elif name == "tr":
            if parent.el.name in _ROW_GROUPS or parent.el.name == "table":
                parent.rows.append(frame.cells)
            else:
                self._add(parent, " ".join(c for c, _ in frame.cells))
        elif name in _ROW_GROUPS:
            if parent.el.name == "table":
                parent.rows.extend(frame.rows)
            else:
                self._add(parent, " ".join(c for row in frame.rows for c, _ in row))
        elif name == "caption" and parent.el.name == "table":
            parent.caption = self.conv.convert_cell(el, text, frame.parent_tags)
        elif name == "table":
            table = self.conv.convert_table(el, frame.rows, frame.caption, frame.parent_tags)
            self._add(parent, table)
        elif name == "br":
            self._br(parent)
        else:
            fn = self.conv.get_conv_fn_cached(name)
            if fn is not None:
                text = fn(el, text, frame.parent_tags)
            if text and name == "img":
                self.ws = _AFTER_TEXT
                self.seen_content = True
            self._add(parent, text, code=name in _CODE_SPAN_TAGS)

    @staticmethod
    def _add(frame: _Frame, text: str, code: bool = False) -> None:
        # Tables keep only rows and cells; anything else directly inside (left over by the
        # depth cap) has no place in a pipe table.
        if not text or frame.el.name in _TABLE_STRUCTURE:
            return
        # A code span touching a backtick would merge with it ("`a``b`" is one span).
        if (
            (code or frame.tail_code)
            and text[0] == "`"
            and frame.parts
            and frame.parts[-1][-1:] == "`"
        ):
            text = " " + text
        frame.parts.append(text)
        frame.tail_code = code and text[-1] == "`"

    def _block_boundary(self, frame: _Frame) -> None:
        # White space that text left before a block is not content (a soft break there would
        # even become a blank line), and a hard break there has nothing left to break. Only
        # text and <br> leave them (see self.ws); block output ends in newlines that must stay.
        parts = frame.parts
        if parts and (self.ws == _AFTER_SPACE or self.ws == _AFTER_BREAK):
            last = parts[-1]
            last = last.removesuffix(_HARD_BREAK).rstrip(_TRAILING)
            if last:
                parts[-1] = last
            else:
                parts.pop()
        self.ws = _AT_START

    # -- leaves -------------------------------------------------------------------------

    def _text(self, raw: str) -> None:
        frame = self.frames[-1]
        if frame.el.name in _TABLE_STRUCTURE:
            return
        if self.content_depth == 0 and raw.strip(_HTML_SPACE):
            if not self.seen_content and is_regeneration_counter(raw):
                self.seen_content = True
                return
            if is_copy_stats(raw):
                return
        if "_inline" in frame.tags or "_noformat" in frame.tags:
            text = _HTML_SPACE_RUN.sub(" ", raw)
        else:
            text = _HTML_SPACE_RUN.sub(_collapse, raw)
        if self.ws != _AFTER_TEXT:
            text = text.lstrip(_TRAILING)
        if not text:
            return
        self.ws = _AFTER_SPACE if text[-1] in _TRAILING else _AFTER_TEXT
        self._add(frame, text)
        if text.strip(_TRAILING):
            frame.ol_next = None
            self.seen_content = True

    def _br(self, frame: _Frame) -> None:
        inline = "_inline" in frame.tags or "_noformat" in frame.tags
        if self.ws == _AT_START or self.ws == _AFTER_BREAK or (inline and self.ws != _AFTER_TEXT):
            return
        if not inline:
            self._block_boundary(frame)
        self._add(frame, self.conv.convert_br(frame.el, "", frame.tags))
        self.ws = _AFTER_SPACE if inline else _AFTER_BREAK

    def _code_block(self, frame: _Frame, language: str, code: str) -> None:
        self.seen_content = True
        out = self.conv.convert_code_block(language, code, frame.tags)
        if "_inline" in frame.tags or "_noformat" in frame.tags:
            if out:
                self.ws = _AFTER_TEXT
        else:
            self._block_boundary(frame)
        self._add(frame, out, code=out[-1:] == "`")
        frame.pres_since += 1

    def _math(self, frame: _Frame, display: bool, tex: str) -> None:
        self.seen_content = True
        out = self.conv.convert_math(display, tex, frame.tags)
        if display and "_inline" not in frame.tags and "_noformat" not in frame.tags:
            self._block_boundary(frame)
        elif out:
            self.ws = _AFTER_TEXT
        self._add(frame, out)
        frame.ol_next = None
