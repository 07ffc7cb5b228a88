"""Text rules the two HTML engines share: link destinations and titles, inline edges.

Kept apart from :mod:`convkit.markdown.reference` so that the compiled engine can use them
without importing markdownify (and BeautifulSoup), which only the reference engine needs.
"""
from __future__ import annotations

import re

from ._layout import BREAK, SOFT, soft_breaks

__all__ = [
    "_BACKTICK_RUN", "_EDGE", "_SCHEME_URL", "_SPACE_RUN", "_URL_CONTROL", "_block_text",
    "_destination", "_edge", "_split_edges", "_title", "_wrap",
]

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
