"""Deciding whether a turn is scraped page HTML (to convert) or already markdown (to keep)."""
from __future__ import annotations

import re

__all__ = ["looks_like_html"]

# A scraped turn is the outerHTML of the message container, so it opens with a complete start
# tag of a block element (optionally after a stray "2 / 2" counter). Markdown turns that merely
# start with "<" ("<meta …>" answers, "<?php", "<https://…>" autolinks, "<Formik") do not.
_HTML_START = re.compile(
    r"\s*(?:\d{1,4} ?/ ?\d{1,4}\s*)?"
    r"<(?:div|p|pre|ol|ul|table|h[1-6]|blockquote|section|article|dl|hr)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    """True when ``text`` is ShareGPT page HTML that :func:`html_to_markdown` must convert.

    The text must open (after white space) with a complete start tag of a block element
    (``<div``, ``<p>``, ``<pre``, ``<ol``, ``<ul``, ``<table``, ``<h1``–``<h6``,
    ``<blockquote``, …) and end with ``>``, as the serialised DOM of a message does. Cleaned
    markdown, even one that contains or starts with HTML-like text, is left alone unless it is
    entirely such markup.
    """
    return _HTML_START.match(text) is not None and text.rstrip().endswith(">")
