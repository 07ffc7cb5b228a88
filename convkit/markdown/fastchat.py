"""FastChat compatibility: ``fastchat/data/clean_sharegpt.py``'s ``html_to_markdown``, exactly.

FastChat removes opening ``<div…>``/``<span…>`` tags with regexes, runs markdownify **0.11.6**
(it pins that version) with default options, rewrites code fences, strips a leading
``N / M``, ``CopyN chars / N words`` and empty code blocks, replaces ``\\n\\n\\n`` by ``\\n``
and strips. Its known faults are reproduced on purpose (REFERENCE.md §1 and §3): the first code
line becomes the fence language when there is no "Copy code" header, KaTeX comes out three
times, ``_`` and ``*`` are backslash-escaped in prose, "1 / 2 cup" loses "1 / 2".

convkit depends on a newer markdownify whose output differs, so :class:`Markdownify0116` re-does
the 0.11.6 algorithm (MIT licence, © 2012-2018 Matthew Tretter) on the same BeautifulSoup
``html.parser`` tree, without recursion. Where FastChat itself fails (``RecursionError`` on deep
nesting, ``ValueError`` on ``<ol start="x">``, ``TypeError`` on tags named ``hn`` or ``soup``,
``ParserRejectedMarkup``), :func:`html_to_markdown` raises :class:`~convkit.errors.InputError`.
"""
from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag
from bs4.exceptions import ParserRejectedMarkup

from ..errors import InputError

__all__ = ["MAX_DEPTH", "Markdownify0116", "html_to_markdown"]

# FastChat's regexes, verbatim (fastchat/data/clean_sharegpt.py).
_DIV = re.compile("<div.*?>")
_SPAN = re.compile("<span.*?>")
_CODE_LANG = re.compile("```\\s*" + "(.*?)" + "(?:Copy code)+" + "(.+?)" + "\\s*?```", re.DOTALL)
_CODE_LANG_FORMAT = "```\\g<1>\n\\g<2>\n```"
_REGENERATE = re.compile("\\d+ / \\d+")
_COPY_CHARS = re.compile("Copy\\d+ chars / \\d+ words")
_COPY_CODE = re.compile("```(.*?)Copy code\\s*```")

# FastChat recurses once per element level and stops with RecursionError near Python's default
# limit of 1000 frames; deeper input has no FastChat output to reproduce.
MAX_DEPTH = 980

# markdownify 0.11.6's module-level patterns.
_HEADING_CONVERTER = re.compile(r"h(\d+)")  # getattr fallback 'convert_h(\d+)', prefix match
_HEADING_INLINE = re.compile(r"h[1-6]")  # prefix match
_LINE_START = re.compile(r"^", re.MULTILINE)
_BLANKS = re.compile(r"[\t ]+")
_NESTED = frozenset({"ol", "ul", "li", "table", "thead", "tbody", "tfoot", "tr", "td", "th"})
_BULLETS = "*+-"
# Tag names that reach a convert_ method of 0.11.6 with the wrong signature.
_CRASHING_NAMES = frozenset({"hn", "soup"})


def _chomp(text: str) -> tuple[str, str, str]:
    prefix = " " if text and text[0] == " " else ""
    suffix = " " if text and text[-1] == " " else ""
    return prefix, suffix, text.strip()


def _inline(text: str, markup: str) -> str:
    prefix, suffix, text = _chomp(text)
    if not text:
        return ""
    return f"{prefix}{markup}{text}{markup}{suffix}"


def _is_nested(el: object) -> bool:
    return isinstance(el, Tag) and el.name in _NESTED


class _Frame:
    __slots__ = ("children_inline", "index", "inline", "li_above", "node", "parts", "ul_depth")

    def __init__(self, node: Tag, inline: bool, li_above: bool, ul_depth: int) -> None:
        self.node = node
        self.inline = inline  # convert_as_inline of this node
        self.children_inline = inline or (
            _HEADING_INLINE.match(node.name) is not None or node.name in ("td", "th")
        )
        self.parts: list[str] = []
        self.index = 0  # next child to visit
        self.li_above = li_above or node.name == "li"  # this node or an ancestor is <li>
        self.ul_depth = ul_depth + (node.name == "ul")  # <ul> among this node and ancestors


class Markdownify0116:
    """markdownify 0.11.6's ``MarkdownConverter`` with its default options, walked iteratively."""

    def convert(self, html: str) -> str:
        """``markdownify.markdownify(html)`` as of 0.11.6."""
        return self._process(_parse(html))

    # -- the walk (0.11.6 process_tag, children first, convert function last) ------------

    def _process(self, soup: BeautifulSoup) -> str:
        root = _Frame(soup, False, False, -1)
        stack = [root]
        while True:
            frame = stack[-1]
            contents = frame.node.contents
            if frame.index < len(contents):
                el = contents[frame.index]
                frame.index += 1
                if isinstance(el, (Comment, Doctype)):
                    continue
                if isinstance(el, NavigableString):
                    frame.parts.append(self._text(el))
                    continue
                if len(stack) > MAX_DEPTH:
                    raise InputError(
                        f"HTML nested deeper than {MAX_DEPTH} elements: FastChat's converter "
                        "fails here (RecursionError)"
                    )
                _drop_edge_whitespace(el)
                child = _Frame(el, frame.children_inline, frame.li_above, frame.ul_depth)
                stack.append(child)
                continue
            stack.pop()
            text = "".join(frame.parts)
            if not stack:
                return text  # the document itself has no convert function
            text = self._convert(frame, text, stack[-1])
            stack[-1].parts.append(text)

    def _text(self, el: NavigableString) -> str:
        text = str(el) or ""
        parent = el.parent
        if not (parent.name == "pre" or (parent.name == "code" and parent.parent.name == "pre")):
            text = _BLANKS.sub(" ", text)
        if parent.name != "code" and parent.name != "pre":
            text = text.replace("*", r"\*").replace("_", r"\_")
        following = el.next_sibling
        if parent.name == "li" and (following is None or following.name in ("ul", "ol")):
            text = text.rstrip()
        return text

    def _convert(self, frame: _Frame, text: str, parent: _Frame) -> str:
        el, name, inline = frame.node, frame.node.name, frame.inline
        method = getattr(self, "convert_" + name, None) if name.isidentifier() else None
        if method is not None:
            return method(el, text, inline, frame, parent)
        if name in _CRASHING_NAMES:
            raise InputError(f"FastChat's converter fails on a <{name}> tag (TypeError)")
        heading = _HEADING_CONVERTER.match(name)
        if heading is not None:
            return self._heading(int(heading.group(1)), text, inline)
        return text

    # -- convert functions, by tag name ----------------------------------------------------

    def convert_a(self, el: Tag, text: str, inline: bool, *_: object) -> str:
        prefix, suffix, text = _chomp(text)
        if not text:
            return ""
        href, title = el.get("href"), el.get("title")
        if text.replace(r"\_", "_") == href and not title:
            return f"<{href}>"
        title_part = ' "{}"'.format(title.replace('"', r"\"")) if title else ""
        return f"{prefix}[{text}]({href}{title_part}){suffix}" if href else text

    def convert_b(self, el: Tag, text: str, *_: object) -> str:
        return _inline(text, "**")

    convert_strong = convert_b

    def convert_em(self, el: Tag, text: str, *_: object) -> str:
        return _inline(text, "*")

    convert_i = convert_em

    def convert_del(self, el: Tag, text: str, *_: object) -> str:
        return _inline(text, "~~")

    convert_s = convert_del

    def convert_sub(self, el: Tag, text: str, *_: object) -> str:
        return _inline(text, "")

    convert_sup = convert_sub

    def convert_code(self, el: Tag, text: str, *_: object) -> str:
        return text if el.parent.name == "pre" else _inline(text, "`")

    convert_kbd = convert_samp = convert_code

    def convert_blockquote(self, el: Tag, text: str, inline: bool, *_: object) -> str:
        if inline:
            return text
        return "\n" + (_LINE_START.sub("> ", text) + "\n\n") if text else ""

    def convert_br(self, el: Tag, text: str, inline: bool, *_: object) -> str:
        return "" if inline else "  \n"

    def _heading(self, n: int, text: str, inline: bool) -> str:
        if inline:
            return text
        text = text.rstrip()
        if n <= 2:
            text = text.rstrip()
            return f"{text}\n{('=' if n == 1 else '-') * len(text)}\n\n" if text else ""
        return f"{'#' * n} {text}\n\n"

    def convert_hr(self, *_: object) -> str:
        return "\n\n---\n\n"

    def convert_img(self, el: Tag, text: str, inline: bool, *_: object) -> str:
        alt = el.attrs.get("alt", None) or ""
        src = el.attrs.get("src", None) or ""
        title = el.attrs.get("title", None) or ""
        title_part = ' "{}"'.format(title.replace('"', r"\"")) if title else ""
        if inline:
            return alt
        return f"![{alt}]({src}{title_part})"

    def convert_list(
        self, el: Tag, text: str, inline: bool, frame: _Frame, parent: _Frame
    ) -> str:
        following = el.next_sibling
        before_paragraph = bool(following) and following.name not in ("ul", "ol")
        if frame.li_above:
            return "\n" + _LINE_START.sub("\t", text).rstrip() if text else "\n"
        return text + ("\n" if before_paragraph else "")

    convert_ul = convert_ol = convert_list

    def convert_li(self, el: Tag, text: str, inline: bool, frame: _Frame, parent: _Frame) -> str:
        owner = el.parent
        if owner is not None and owner.name == "ol":
            start = owner.get("start")
            try:
                first = int(start) if start else 1
            except ValueError:
                raise InputError(
                    f"FastChat's converter fails on <ol start={start!r}> (ValueError)"
                ) from None
            # The child index counts text nodes too; ``parent.index`` is the child's position.
            bullet = f"{first + parent.index - 1}."
        else:
            bullet = _BULLETS[frame.ul_depth % len(_BULLETS)]
        return f"{bullet} {(text or '').strip()}\n"

    def convert_p(self, el: Tag, text: str, inline: bool, *_: object) -> str:
        if inline:
            return text
        return f"{text}\n\n" if text else ""

    def convert_pre(self, el: Tag, text: str, *_: object) -> str:
        return f"\n```\n{text}\n```\n" if text else ""

    def convert_table(self, el: Tag, text: str, *_: object) -> str:
        return "\n\n" + text + "\n"

    def convert_td(self, el: Tag, text: str, *_: object) -> str:
        return " " + text + " |"

    convert_th = convert_td

    def convert_tr(self, el: Tag, text: str, *_: object) -> str:
        cells = el.find_all(["td", "th"])
        is_headrow = all(cell.name == "th" for cell in cells)
        first_row = not el.previous_sibling
        overline = underline = ""
        if is_headrow and first_row:
            underline = "| " + " | ".join(["---"] * len(cells)) + " |" + "\n"
        elif first_row and (
            el.parent.name == "table"
            or (el.parent.name == "tbody" and not el.parent.previous_sibling)
        ):
            overline = "| " + " | ".join([""] * len(cells)) + " |" + "\n"
            overline += "| " + " | ".join(["---"] * len(cells)) + " |" + "\n"
        return overline + "|" + text + "\n" + underline


def _drop_edge_whitespace(node: Tag) -> None:
    """0.11.6 removes blank text at the edges of list and table parts, and next to them.

    It extracts while iterating over the same list, which skips the node after each removal;
    the index walk below keeps that behaviour.
    """
    if node.name not in _NESTED:
        return
    contents = node.contents
    i = 0
    while i < len(contents):
        el = contents[i]
        if isinstance(el, NavigableString) and str(el).strip() == "":
            prev, nxt = el.previous_sibling, el.next_sibling
            if not prev or not nxt or _is_nested(prev) or _is_nested(nxt):
                el.extract(_self_index=i)
        i += 1


def _parse(html: str) -> BeautifulSoup:
    # A leading processing instruction keeps BeautifulSoup's advisory warnings (markup that
    # looks like a file name or URL, or like XML) from firing on message text; it is removed
    # right away and changes nothing else in html.parser's tree.
    try:
        soup = BeautifulSoup("<?convkit?>" + html, "html.parser")
    except ParserRejectedMarkup as exc:
        raise InputError(f"FastChat skips this message: BeautifulSoup rejects it ({exc})") from None
    soup.contents[0].extract()
    return soup


def html_to_markdown(html: str) -> str:
    """FastChat's ``html_to_markdown(val)``, step for step."""
    val = _DIV.sub("", html)
    val = _SPAN.sub("", val)
    val = Markdownify0116().convert(val).strip()
    val = _CODE_LANG.sub(_CODE_LANG_FORMAT, val)
    noise = _REGENERATE.search(val)
    if noise and noise.start() == 0:
        val = val[noise.end():]
    val = _COPY_CHARS.sub("", val)
    val = _COPY_CODE.sub("", val)
    return val.replace("\n\n\n", "\n").strip()
