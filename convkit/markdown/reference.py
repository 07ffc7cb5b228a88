r"""The reference HTML → markdown engine. This docstring is the output specification.

A faster engine must produce byte-identical output; ``CASES`` in
``tests/test_markdown_reference.py`` are shared by all engines. White space below means HTML
white space (space, tab, LF, CR, FF), never other Unicode spaces.

Input
  1. U+0000 and the marker characters U+FDD0–U+FDD2 are removed; markers that character
     references produce are removed from text and attribute values after parsing.
  2. Nesting guard (lexbor's parse time grows with the square of the nesting): when the text
     has more than 10,000 ``<`` and the raw tags (regex ``_lexbor._TAG``; a start tag +1, an end
     tag −1 but not below 0; void tags, ``<x/>`` and p li dt dd option optgroup tr td th thead
     tbody tfoot colgroup caption rb rt rtc rp html head body not counted) reach a depth over
     10,000, the output is plain text: every ``<[^<>]*>`` replaced by a space, entities decoded,
     white-space runs made one space, stripped. Otherwise:
  3. The text is parsed by lexbor (selectolax) as an HTML5 fragment in a ``<div>`` context.

Tree
  4. Comments and doctypes are ignored. These elements are removed with their content, at any
     depth: button svg script style template noscript title head meta link base select input
     textarea iframe object embed canvas audio video map.
  5. An element deeper than 64 (top-level elements have depth 1) is replaced by its content: it
     adds no markup, no block boundary and no break; rules 6 and 7 do not apply to it.
  6. ``<pre>`` is a code block. Its text starts at its first descendant ``<code>`` (before it
     is the ShareGPT header: language label, "Copy code", button; rule-4 elements are searched
     too) or at its start without one, and runs to its end; rule-4 elements are skipped, ``<br>``
     is a newline, other tags are transparent (hljs spans). White space at the very end is
     removed; the rest is kept byte for byte. The language is the first ``language-X`` class
     token of that ``<code>``, else of the ``<pre>``, and none if X contains a backtick.
  7. Math: an element with class token ``katex-display`` (display) or ``katex`` (inline), or a
     ``<math>`` (display when ``display="block"``), that has a descendant
     ``<annotation encoding="application/x-tex">``, is that TeX (white-space runs made one
     space, stripped). Without the annotation it is an ordinary element, except that an
     element with class token ``katex-html`` whose previous element sibling has class token
     ``katex-mathml`` is removed with its content: it is KaTeX's drawing of the math that the
     MathML before it holds, and its text would repeat the MathML's.

Text
  8. White space collapses as in CSS ``white-space: normal``, across element boundaries: a run
     is one space, or a soft line break when it contains a newline (in table cells, headings and
     code spans always a space). A run is dropped at the start of a block, after a hard break,
     and after text that already ended in white space; white space before a block is dropped.
  9. ShareGPT page noise (see :mod:`convkit.markdown.noise`), only for a whole text node whose
     ancestors are all ``<div>``/``<span>``: dropped when it is the first non-blank text of the
     fragment (no code, math or image before it) and reads "N / M" (1 ≤ N ≤ M, up to 4 digits,
     the spaces optional); dropped anywhere when it reads "N chars / N words", optionally after
     "Copy" (``noise.is_regeneration_counter``, ``noise.is_copy_stats``).
 10. Nothing is backslash-escaped: ``snake_case``, ``*`` and ``<tag>`` stay as they are.

Blocks (separated by one blank line; in a table cell or heading they become spaces)
 11. p, div and every other tag of ``_walk.BLOCK_TAGS`` without a rule below (address
     article aside body center dd details dialog dir dl dt fieldset figcaption figure footer
     form header hgroup html legend main menu nav search section summary listing plaintext
     xmp, and caption outside a table): their text as a block.
 12. h1–h6: ``#`` × level, a space, the text on one line; empty headings vanish.
 13. blockquote: each line prefixed with ``> `` (``>`` alone on empty lines).
 14. ul/ol: items one per line; a list inside a list item follows the item's text on the next
     line. li: marker ``-``, or ``N.`` when its parent is ``<ol>``; later lines indented by the
     marker's width plus one; empty items vanish but take their number. An ``<ol>`` starts at
     its ``start`` attribute when that is 1–9 digits; otherwise, when its previous element
     siblings back to an earlier sibling ``<ol>`` are all ``<pre>`` (at least one; blank text
     and rule-4 elements between do not count), it continues that list's numbering (the scraped
     pages restart numbering after a code block); otherwise it starts at 1.
 15. table: rows (tr of thead/tbody/tfoot or the table, in document order) of cells; the first
     row is the header row. A cell is its text on one line with ``|`` written ``\|``; colspan
     N (clamped 1–1000) adds N−1 empty cells; rows are padded with empty cells to the widest
     row. Rows are ``| a | b |`` (an empty cell is ``| |``), then the delimiter row
     ``| --- | --- |`` after the header. A caption is a paragraph before the table; other
     content of table, row groups and rows is dropped. Inside a cell or heading a table is its
     caption and cells joined by spaces; so is, as a paragraph, a table whose padded grid
     (rows times the widest row) would exceed ``MAX_TABLE_CELLS`` cells.
 16. hr: ``---``.
 17. Code block: a fence of max(3, longest backtick run in the code + 1) backticks plus the
     language, the code lines, the fence; no block for empty code. Inside a cell or heading it is
     a code span of the code with newlines made spaces.
 18. Display math: ``$$tex$$`` as a block (inline in cells and headings); inline math ``$tex$``.

Inline
 19. b/strong ``**``, i/em ``*``, del/s/strike ``~~`` around the text, with white space at the
     element's edges moved outside (as one space, or a hard break when it holds one); empty
     elements vanish; no marks inside the same kind or inside code.
 20. code/kbd/samp: a code span, edges as in rule 19, delimited by one backtick more than the
     longest backtick run inside and padded with a space on both sides when that run is not
     empty; empty spans vanish. A code span never touches a backtick: a space is put between.
 21. a: ``[text](dest "title")``; ``<href>`` when the text equals an href with a scheme and
     there is no title; just the text without href or inside code. The destination is written
     ``<…>`` (with ``<``/``>`` percent-encoded) when it has a space, ``<``, ``>`` or unbalanced
     parentheses; tabs and newlines are removed from it.
 22. img: ``![alt](src "title")``; only the alt text without src or inside code.
 23. br: a hard break (a backslash at the line end) when text of the same block follows;
     nothing at the start or end of a block, before a nested block or after another break; a
     space in cells, headings and code.
 24. q: the text in double quotes; sub, sup and all other inline tags: their text.

Output
 25. A soft line break is a newline, except that it is a space when the next line would start a
     block (list marker, ``#``, ``>``, three backticks, ``~~~``, an HTML block start, a setext
     underline or thematic break) or the line ends with a backslash.
 26. Lines lose trailing spaces (code lines are kept verbatim; a blank code line keeps its
     container prefix without trailing spaces), runs of identical blank lines become one, and
     the result is stripped.
"""
from __future__ import annotations

from collections.abc import Callable

from markdownify import ATX, BACKSLASH, MarkdownConverter

from ._layout import BREAK, CODE, finish
from ._lexbor import clean_input, parse, plain_text, too_deep
from ._walk import BLOCK_TAGS, HEADINGS, MAX_TABLE_CELLS, Element, Walk

__all__ = ["ReferenceConverter", "html_to_markdown"]

from ._rules import (
    _BACKTICK_RUN,
    _SCHEME_URL,
    _SPACE_RUN,
    _URL_CONTROL,
    _block_text,
    _destination,
    _edge,
    _split_edges,
    _title,
    _wrap,
)


def _block(text: str, parent_tags: frozenset[str]) -> str:
    if "_inline" in parent_tags:
        text = _SPACE_RUN.sub(" ", text).strip(" ")
        return f" {text} " if text else ""
    text = _block_text(text)
    return f"\n\n{text}\n\n" if text else ""


class ReferenceConverter(MarkdownConverter):
    """markdownify's converter with the convkit output rules (see the module docstring).

    Per-tag behaviour lives in ``convert_<tag>(el, text, parent_tags)`` methods, dispatched by
    name; a subclass changes a rule by overriding one method (and adding the tag name to
    :attr:`CONVERTED` for a new tag). :meth:`convert` parses with lexbor and walks the tree
    iteratively (:mod:`convkit.markdown._walk`) instead of markdownify's recursion.
    """

    class DefaultOptions(MarkdownConverter.DefaultOptions):
        # Documentation of the house rules in markdownify's terms; the methods implement them.
        bullets = "-"
        escape_asterisks = False
        escape_underscores = False
        escape_misc = False
        heading_style = ATX
        newline_style = BACKSLASH
        strong_em_symbol = "*"
        table_infer_header = True

    #: Tags with a converter method of their own; other block tags convert like ``<div>``,
    #: other inline tags keep just their content.
    CONVERTED = frozenset(
        {
            "a", "b", "blockquote", "br", "code", "del", "div", "em", "hr", "i", "img", "kbd",
            "li", "ol", "p", "q", "s", "samp", "strike", "strong", "sub", "sup", "ul",
        }
    )

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._conv_fns: dict[str, Callable[[Element, str, frozenset[str]], str] | None] = {}

    def convert(self, html: str) -> str:
        """Convert one HTML fragment (a message) to markdown."""
        html = clean_input(html)
        if too_deep(html):
            return plain_text(html)
        first = parse(html)
        if first is None:
            return ""
        return finish(Walk(self).run(first))

    def convert_soup(self, soup: object) -> str:
        """Not supported: the rules are defined on lexbor's tree, not on BeautifulSoup's."""
        raise NotImplementedError("ReferenceConverter converts HTML text; call convert(html)")

    def get_conv_fn_cached(
        self, tag_name: str
    ) -> Callable[[Element, str, frozenset[str]], str] | None:
        """:meth:`get_conv_fn`, looked up once per tag name (markdownify's name for this)."""
        try:
            return self._conv_fns[tag_name]
        except KeyError:
            fn = self._conv_fns[tag_name] = self.get_conv_fn(tag_name)
            return fn

    def get_conv_fn(self, tag_name: str) -> Callable[[Element, str, frozenset[str]], str] | None:
        """The converter of ``tag_name``: its method, the heading rule, or the block rule."""
        if tag_name in HEADINGS:
            level = int(tag_name[1])
            return lambda el, text, parent_tags: self.convert_hN(level, el, text, parent_tags)
        if tag_name in self.CONVERTED:
            return getattr(self, "convert_" + tag_name)
        if tag_name in BLOCK_TAGS:
            return self.convert_div
        return None

    # -- blocks ----------------------------------------------------------------------------

    def convert_div(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """A block: separated by a blank line; inside a table cell or heading, spaces."""
        return _block(text, parent_tags)

    convert_p = convert_div

    def convert_blockquote(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """Every line prefixed with ``> `` (``>`` on empty lines)."""
        if "_inline" in parent_tags:
            return _block(text, parent_tags)
        text = _block_text(text)
        if not text:
            return ""
        quoted = "\n".join("> " + line if line.strip(" ") else ">" for line in text.split("\n"))
        return f"\n\n{quoted}\n\n"

    def convert_hN(self, n: int, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """ATX heading on one line (``## text``); empty headings vanish."""
        text = _SPACE_RUN.sub(" ", text).strip(" ")
        if "_inline" in parent_tags:
            return f" {text} " if text else ""
        return f"\n\n{'#' * n} {text}\n\n" if text else ""

    def convert_hr(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``---`` as its own block."""
        return " " if "_inline" in parent_tags else "\n\n---\n\n"

    def convert_br(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """A hard break (resolved by :func:`finish`); a space where lines cannot break."""
        if "_inline" in parent_tags or "_noformat" in parent_tags:
            return " "
        return BREAK + "\n"

    def convert_ol(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """Items one per line; a list inside a list item follows its text without a blank."""
        if "_inline" in parent_tags:
            return _block(text, parent_tags)
        text = text.strip("\n")
        if not text:
            return ""
        if "li" in parent_tags:
            return f"\n{text}\n"
        return f"\n\n{text}\n\n"

    convert_ul = convert_ol

    def convert_li(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``- text`` or ``N. text``; later lines indented to the text; empty items vanish."""
        if "_inline" in parent_tags:
            return _block(text, parent_tags)
        text = _block_text(text)
        if not text:
            return ""
        indent = " " * (len(el.marker) + 1)
        first, *rest = text.split("\n")
        lines = [f"{el.marker} {first}"]
        lines.extend(indent + line if line else "" for line in rest)
        return "\n".join(lines) + "\n"

    def convert_cell(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """A table cell (or caption) on one line, ``|`` escaped."""
        return _SPACE_RUN.sub(" ", text).strip(" ").replace("|", "\\|")

    def convert_table(
        self,
        el: Element,
        rows: list[list[tuple[str, int]]],
        caption: str,
        parent_tags: frozenset[str],
    ) -> str:
        """A pipe table: the first row is the header; rows padded to the widest row."""
        widest = max((sum(span for _, span in row) for row in rows), default=0)
        if "_inline" in parent_tags or widest * len(rows) > MAX_TABLE_CELLS:
            words = [caption] + [text for row in rows for text, _ in row]
            return _block(" ".join(w for w in words if w), parent_tags)
        expanded = []
        for row in rows:
            cells: list[str] = []
            for text, span in row:
                cells.append(text)
                cells.extend([""] * (span - 1))
            expanded.append(cells)
        width = max((len(r) for r in expanded), default=0)
        blocks = [caption] if caption else []
        if width:
            lines = [self._row(expanded[0], width), self._row(["---"] * width, width)]
            lines.extend(self._row(r, width) for r in expanded[1:])
            blocks.append("\n".join(lines))
        return "".join(f"\n\n{b}\n\n" for b in blocks)

    @staticmethod
    def _row(cells: list[str], width: int) -> str:
        cells = cells + [""] * (width - len(cells))
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    def convert_code_block(self, language: str, code: str, parent_tags: frozenset[str]) -> str:
        """A fenced block (fence longer than any backtick run in the code, at least 3).

        Inside a table cell or heading it is an inline code span of the lines joined by spaces.
        """
        if "_inline" in parent_tags or "_noformat" in parent_tags:
            return self.convert_code(None, code.replace("\n", " "), parent_tags)
        if not code:
            return ""
        longest = max((len(run) for run in _BACKTICK_RUN.findall(code)), default=0)
        fence = "`" * max(3, longest + 1)
        body = "\n".join(CODE + line for line in code.split("\n"))
        return f"\n\n{CODE}{fence}{language}\n{body}\n{CODE}{fence}\n\n"

    def convert_math(self, display: bool, tex: str, parent_tags: frozenset[str]) -> str:
        """``$tex$`` inline, ``$$tex$$`` as a block for display math."""
        if not tex:
            return ""
        if not display:
            return f"${tex}$"
        if "_inline" in parent_tags or "_noformat" in parent_tags:
            return f"$${tex}$$"
        return f"\n\n$${tex}$$\n\n"

    # -- inline ----------------------------------------------------------------------------

    def _emphasis(self, text: str, parent_tags: frozenset[str], mark: str, same: set[str]) -> str:
        # Inside code, or inside the same emphasis (<b><b>x</b></b>), the marks would only
        # add noise.
        if "_noformat" in parent_tags or not same.isdisjoint(parent_tags):
            return text
        return _wrap(text, mark)

    def convert_b(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``**text**``."""
        return self._emphasis(text, parent_tags, "**", {"b", "strong"})

    convert_strong = convert_b

    def convert_i(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``*text*``."""
        return self._emphasis(text, parent_tags, "*", {"i", "em"})

    convert_em = convert_i

    def convert_del(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``~~text~~``."""
        return self._emphasis(text, parent_tags, "~~", {"del", "s", "strike"})

    convert_s = convert_strike = convert_del

    def convert_code(self, el: Element | None, text: str, parent_tags: frozenset[str]) -> str:
        """A code span whose delimiter is longer than any backtick run inside it."""
        if "_noformat" in parent_tags:
            return text
        lead, inner, trail = _split_edges(text)
        if not inner:
            return _edge(lead)
        longest = max((len(run) for run in _BACKTICK_RUN.findall(inner)), default=0)
        if longest:
            inner = f" {inner} "
        return _edge(lead) + "`" * (longest + 1) + inner + "`" * (longest + 1) + _edge(trail)

    convert_kbd = convert_samp = convert_code

    def convert_sub(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """Plain text (markdown has no subscript)."""
        return text

    convert_sup = convert_sub

    def convert_q(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """The text in double quotes, as a browser shows ``<q>``."""
        return f'"{text}"'

    def convert_a(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``[text](href "title")``; ``<href>`` when the text is the absolute URL itself."""
        if "_noformat" in parent_tags:
            return text
        lead, inner, trail = _split_edges(text)
        href = el.get("href")
        if not inner or not href or not href.strip(" \t\n\r\f"):
            return _edge(lead) + inner + (_edge(trail) if inner else "")
        title = el.get("title")
        if inner == href and not title and _SCHEME_URL.fullmatch(href):
            link = f"<{href}>"
        else:
            link = f"[{inner}]({_destination(href)}{_title(title)})"
        return _edge(lead) + link + _edge(trail)

    def convert_img(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """``![alt](src "title")``; just the alt text without a source or inside code."""
        alt = _SPACE_RUN.sub(" ", _URL_CONTROL.sub(" ", el.get("alt") or "")).strip(" ")
        src = (el.get("src") or "").strip(" \t\n\r\f")
        if not src or "_noformat" in parent_tags:
            return alt
        return f"![{alt}]({_destination(src)}{_title(el.get('title'))})"


_CONVERTER = ReferenceConverter()  # stateless: each conversion has its own Walk


def html_to_markdown(html: str) -> str:
    """Convert one scraped HTML message to markdown with the reference engine."""
    return _CONVERTER.convert(html)
