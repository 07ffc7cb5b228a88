"""ShareGPT page noise: what the scraped ChatGPT page adds to a message that is not content.

The rules here are positional, not textual: FastChat deletes ``\\d+ / \\d+`` at the start of
every converted message and ``Copy\\d+ chars / \\d+ words`` anywhere, which eats "1 / 2 cup of
flour". Looking at the raw records and at the scraper (sharegpt.com's extension) tells where the
noise really sits:

* The regeneration counter ("2 / 2") is page chrome around a message. The scraper took a human
  message with ``textContent`` of the whole row, so the counter is glued to the start of the
  *human* text ("5 / 5如果要讓…", record ``qhuNCkw``); a gpt message is the ``outerHTML`` of the
  ``.markdown`` div, where the counter does not occur. In HTML we therefore only drop it when it
  is the first text of the fragment *and* sits outside any content element (only ``div``/
  ``span`` ancestors), i.e. where chrome would be; inside ``<p>`` it is the answer's text.
* "Copy" + "N chars / N words" is a browser extension's footer (a ``<button>`` and a ``<div>``);
  the button is chrome (removed with every ``<button>``), and the counter text is dropped only as
  a whole text node outside content elements.
* The code block header (language label, "Copy code", button, svg) is everything in a ``<pre>``
  before its first ``<code>`` (rule 6 of :mod:`convkit.markdown.reference`).

:func:`strip_regeneration_counter` is the rule for human turns (plain text, never converted).
"""
from __future__ import annotations

import re

__all__ = [
    "CHROME_TAGS",
    "DROPPED_TAGS",
    "is_copy_stats",
    "is_regeneration_counter",
    "strip_regeneration_counter",
]

# Elements whose content is never message text: page UI (buttons, icons) and non-rendered
# markup. They are removed with everything inside them, at any depth.
DROPPED_TAGS = frozenset(
    {
        "button", "svg", "script", "style", "template", "noscript", "title", "head",
        "meta", "link", "base", "select", "input", "textarea", "iframe", "object",
        "embed", "canvas", "audio", "video", "map",
    }
)

# Elements that may wrap page chrome; text with any other ancestor is content.
CHROME_TAGS = frozenset({"div", "span"})

# "2 / 2", as ChatGPT printed the counter of regenerated or edited messages.
_COUNTER = re.compile(r"(\d{1,4}) ?/ ?(\d{1,4})")
# The extension's footer, with or without its "Copy" button text glued in front.
_COPY_STATS = re.compile(r"(?:Copy ?)?\d+ chars ?/ ?\d+ words")
# A counter glued to the human text that follows it: "5 / 5如果…", "2 / 2Write…".
_HUMAN_COUNTER = re.compile(r"\s*(\d{1,4}) / (\d+)")

# What makes "3 / 4ths" or "1 / 3rd" a fraction: an ordinal ending, then no more letters.
_ORDINAL = re.compile(r"(?:st|nd|rd|th)s?(?![^\W\d_])")

_HTML_SPACE = " \t\n\r\f"


def is_regeneration_counter(text: str) -> bool:
    """True when ``text`` (one whole text node) is a counter like "2 / 2" (1 <= N <= M)."""
    m = _COUNTER.fullmatch(text.strip(_HTML_SPACE))
    return m is not None and 1 <= int(m.group(1)) <= int(m.group(2))


def is_copy_stats(text: str) -> bool:
    """True when ``text`` (one whole text node) is a "[Copy]N chars / N words" footer."""
    return _COPY_STATS.fullmatch(text.strip(_HTML_SPACE)) is not None


def strip_regeneration_counter(text: str) -> str:
    """Remove the "N / M" counter the scraper glued to the start of a human message.

    Only a counter directly followed by a letter is removed, because that is how
    ``textContent`` joined it to the question: "5 / 5如果…" loses "5 / 5", while
    "1 / 2 cup of flour" and "1 / 2, 1 / 3 and 1 / 4: which is biggest?" are kept (a question
    does not start with punctuation; a fraction is often followed by it), and so are
    "3 / 4ths of the class" and "1 / 3rd of people" (an ordinal ending, then a word's end).
    Requires 1 <= N <= M and M >= 2 (a counter only shows for two or more versions). A total
    followed by more digits ("2 / 2100 words") is ambiguous, so the text is kept as it is:
    eating a user's "1 / 2000 chance" would be worse than keeping a counter.
    """
    m = _HUMAN_COUNTER.match(text)
    if m is None:
        return text
    n, total = int(m.group(1)), int(m.group(2))
    rest = text[m.end():]
    # The total's digits are taken greedily, so what follows is never a digit.
    if rest and rest[0].isalpha() and 1 <= n <= total and total >= 2 and not _ORDINAL.match(rest):
        return rest
    return text
