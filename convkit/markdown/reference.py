"""SPEC (filled in below)."""
from __future__ import annotations

import re
from collections.abc import Callable

from markdownify import ATX, BACKSLASH, MarkdownConverter

from ._layout import BREAK, CODE, SOFT, finish, soft_breaks
from ._lexbor import clean_input, parse, plain_text, too_deep
from ._walk import BLOCK_TAGS, HEADINGS, Element, Walk

__all__ = ["ReferenceConverter", "html_to_markdown"]

_SCHEME_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*")
_UNSAFE_DESTINATION = re.compile(r"[ <>]")
_URL_CONTROL = re.compile(r"[\t\n\r\f]")
_SPACE_RUN = re.compile(r"[ \n\ufdd2]+")  # spaces, newlines, SOFT
_BACKTICK_RUN = re.compile(r"`+")
_EDGE = " \n" + BREAK + SOFT


def _edge(run: str) -> str:
    """What the white space at the edge of an inline element becomes outside of it."""
    if BREAK in run:
        return BREAK + "\n"
    return " " if run else ""


def _split_edges(text: str) -> tuple[str, str, str]:
    inner = text.strip(_EDGE)
    if not inner:
        return text, "", ""
    lead = text[: len(text) - len(text.lstrip(_EDGE))]
    trail = text[len(text.rstrip(_EDGE)):]
    return lead, inner, trail


def _wrap(text: str, mark: str) -> str:
    """``mark`` + text + ``mark``, with edge spaces and line breaks moved outside the marks."""
    lead, inner, trail = _split_edges(text)
    if not inner:
        return _edge(lead)
    return _edge(lead) + mark + inner + mark + _edge(trail)


def _balanced(url: str) -> bool:
    depth = 0
    for ch in url:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _destination(url: str) -> str:
    """A link destination that survives any URL: ``<…>`` form when the bare form would break."""
    url = _URL_CONTROL.sub("", url.strip(" \t\n\r\f"))
    if _UNSAFE_DESTINATION.search(url) or not _balanced(url):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url


def _title(title: str | None) -> str:
    if not title:
        return ""
    title = _SPACE_RUN.sub(" ", _URL_CONTROL.sub(" ", title)).strip(" ")
    return ' "' + title.replace('"', '\\"') + '"' if title else ""


def _block_text(text: str) -> str:
    """A block's own text: soft breaks resolved, white space at both ends removed."""
    return soft_breaks(text).strip(" \n")


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
        "a b blockquote br code del div em hr i img kbd li ol p q s samp strike strong sub "
        "sup ul".split()
    )

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
        expanded = []
        for row in rows:
            cells: list[str] = []
            for text, span in row:
                cells.append(text)
                cells.extend([""] * (span - 1))
            expanded.append(cells)
        if "_inline" in parent_tags:
            words = [caption] + [c for row in expanded for c in row]
            return _block(" ".join(w for w in words if w), parent_tags)
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

    def convert_sub(self, el: Element, text: str, parent_tags: frozenset[str]) -> str:
        """Plain text (markdown has no subscript)."""
        return text

    convert_sup = convert_sub

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


def html_to_markdown(html: str) -> str:
    """Convert one scraped HTML message to markdown with the reference engine."""
    return ReferenceConverter().convert(html)
