"""Parsing with lexbor, and reading code blocks and TeX out of parsed subtrees.

Both engines parse with lexbor (selectolax), the HTML5 algorithm, so that they see the same tree
for broken markup. Everything here is iterative: parsed trees can be arbitrarily deep.
"""
from __future__ import annotations

import html as _html
import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ._layout import MARKERS
from .noise import DROPPED_TAGS

__all__ = [
    "MAX_NESTING", "attributes", "clean_input", "code_block", "is_katex_drawing", "no_markers",
    "parse", "plain_text", "tex_of", "too_deep",
]

# lexbor spends time proportional to the open-element stack on each block start tag, so
# 100,000 unclosed <div> cost ~15 s. Past this nesting the input is not a chat message and is
# flattened to its text instead (see too_deep).
MAX_NESTING = 10_000

_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img",
        "input", "keygen", "link", "meta", "param", "source", "track", "wbr"
    }
)
# Start tags whose element closes itself at the next sibling; they never nest by themselves.
_SELF_CLOSING_SIBLINGS = frozenset(
    {
        "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody",
        "tfoot", "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body"
    }
)
# Tags as they appear in the raw text. The rule is defined on this regex, so an attribute value
# holding "<" or ">" only changes what is counted. Excluding "<" inside a tag keeps the scan
# linear on text full of unclosed "<a".
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)[^<>]*?(/?)>")
_ANY_TAG = re.compile(r"<[^<>]*>")  # "<" excluded: linear on runs of unclosed "<"
_HTML_SPACE_RUN = re.compile(r"[ \t\n\r\f]+")
_LANGUAGE = re.compile(r"language-(\S+)")


def clean_input(html: str) -> str:
    """Remove NUL and the converter's marker characters, which never occur in real text."""
    if "\x00" in html:
        html = html.replace("\x00", "")
    for marker in MARKERS:
        if marker in html:
            html = html.replace(marker, "")
    return html


def no_markers(text: str) -> str:
    """``text`` without marker characters.

    :func:`clean_input` removes them from the HTML, but a character reference (``&#xFDD0;``)
    puts them back when lexbor decodes it, in text and in attribute values alike.
    """
    for marker in MARKERS:
        if marker in text:
            text = text.replace(marker, "")
    return text


def attributes(node: LexborNode) -> dict[str, str | None]:
    """``node.attributes`` with marker characters removed from the values."""
    attrs = node.attributes
    for key, value in attrs.items():
        if value:
            attrs[key] = no_markers(value)
    return attrs


def too_deep(html: str) -> bool:
    """True when the raw tags open more than MAX_NESTING elements at some point.

    Counted on the text with :data:`_TAG`, as a stack of open tag names: a start tag pushes its
    name, and so does ``<x/>`` (in HTML a slash does not close a ``div``), except inside ``svg``
    and ``math``, where it does; an end tag pops down to the nearest open element of its name
    and is ignored when none is open (a stray ``</x>`` closes nothing). Void elements and tags
    that close at their next sibling (``p``, ``li``, ``td``…) do not count. Only run when the
    text has that many ``<`` at all.
    """
    # Counting "<" scans the whole message; one shorter than the limit cannot hold that many.
    if len(html) <= MAX_NESTING or html.count("<") <= MAX_NESTING:
        return False
    stack: list[str] = []
    open_count: dict[str, int] = {}
    foreign = 0  # open svg and math elements
    for m in _TAG.finditer(html):
        name = m.group(2).lower()
        if name in _VOID or name in _SELF_CLOSING_SIBLINGS:
            continue
        if m.group(1):
            if open_count.get(name):
                while True:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top in ("svg", "math"):
                        foreign -= 1
                    if top == name:
                        break
        elif not (m.group(3) and foreign):
            stack.append(name)
            open_count[name] = open_count.get(name, 0) + 1
            if name in ("svg", "math"):
                foreign += 1
            if len(stack) > MAX_NESTING:
                return True
    return False


def plain_text(html: str) -> str:
    """The fallback for :func:`too_deep` input: tags removed, entities decoded, spaces collapsed."""
    text = no_markers(_html.unescape(_ANY_TAG.sub(" ", html)))
    return _HTML_SPACE_RUN.sub(" ", text).strip(" ")


def parse(html: str) -> LexborNode | None:
    """Parse ``html`` as a fragment (context ``<div>``); return its first top-level node."""
    return LexborHTMLParser(html, is_fragment=True).root


def _walk_text(top: LexborNode, start: LexborNode | None):
    """Yield the text of ``top``'s subtree in document order, skipping dropped elements.

    With ``start``, text before entering ``start`` is skipped. ``<br>`` yields a newline.
    """
    started = start is None
    start_id = start.mem_id if start is not None else None
    node = top.child
    depth = 1  # of ``node`` below ``top``
    while node is not None:
        tag = node.tag
        descend = False
        if tag == "-text":
            if started:
                yield no_markers(node.text_content or "")
        elif tag and tag[0] not in "-!" and tag not in DROPPED_TAGS:
            if not started and node.mem_id == start_id:
                started = True
            if tag == "br":
                if started:
                    yield "\n"
            else:
                descend = True
        if descend and node.child is not None:
            node = node.child
            depth += 1
            continue
        while node.next is None:
            node = node.parent
            depth -= 1
            if depth == 0:
                return
        node = node.next


def _first_descendant(top: LexborNode, match) -> LexborNode | None:
    """The first element below ``top`` (not ``top`` itself), in document order, that matches.

    Not ``css_first``: on the node object of a fragment's first top-level node, selectolax
    searches the whole fragment, so a top-level ``<pre>`` would find a later sibling's
    ``<code>``. The search goes into every element, dropped ones included.
    """
    node = top.child
    depth = 1
    while node is not None:
        tag = node.tag
        if tag and tag[0] not in "-!":
            if match(node, tag):
                return node
            if node.child is not None:
                node = node.child
                depth += 1
                continue
        while node.next is None:
            node = node.parent
            depth -= 1
            if depth == 0:
                return None
        node = node.next
    return None


def _is_code(node: LexborNode, tag: str) -> bool:
    return tag == "code"


def _is_tex_annotation(node: LexborNode, tag: str) -> bool:
    return tag == "annotation" and attributes(node).get("encoding") == "application/x-tex"


def _language(node: LexborNode | None) -> str:
    if node is None:
        return ""
    m = _LANGUAGE.search(attributes(node).get("class") or "")
    # A backtick cannot be part of a backtick fence's info string.
    return m.group(1) if m and "`" not in m.group(1) else ""


def code_block(pre: LexborNode) -> tuple[str, str]:
    """Language and exact text of a ``<pre>``.

    The text starts at the first ``<code>`` (what precedes it is the ShareGPT header: label,
    "Copy code", button) and runs to the end of the ``<pre>``; without ``<code>`` it is all the
    text. Only white space at the very end is removed (the page ends code with a newline).
    The language is the ``language-*`` class of that ``<code>``, else of the ``<pre>``.
    """
    code = _first_descendant(pre, _is_code)
    text = "".join(_walk_text(pre, code)).rstrip(" \t\n")
    return _language(code) or _language(pre), text


def _classes(node: LexborNode) -> list[str]:
    return (attributes(node).get("class") or "").split()


def is_katex_drawing(node: LexborNode, classes: str) -> bool:
    """Whether ``node`` (its ``class`` value given) is KaTeX's ``katex-html`` after its
    ``katex-mathml``: the same math drawn, which rule 7 removes when there is no TeX."""
    if "katex-html" not in classes.split():
        return False
    sibling = node.prev
    while sibling is not None and not sibling.is_element_node:
        sibling = sibling.prev
    return sibling is not None and "katex-mathml" in _classes(sibling)


def tex_of(node: LexborNode, tag: str) -> tuple[bool, str] | None:
    """``(display, tex)`` when ``node`` is rendered math with a TeX annotation, else None.

    KaTeX marks display math with ``katex-display`` and inline math with ``katex``; a bare
    MathML ``<math>`` is display when ``display="block"``. White space in the TeX is collapsed
    (TeX ignores it in math mode).
    """
    classes = _classes(node)
    if "katex-display" in classes:
        display = True
    elif "katex" in classes:
        display = False
    elif tag == "math":
        display = attributes(node).get("display") == "block"
    else:
        return None
    annotation = _first_descendant(node, _is_tex_annotation)
    if annotation is None:
        return None
    tex = _HTML_SPACE_RUN.sub(" ", no_markers(annotation.text(deep=True))).strip(" ")
    return display, tex
