"""Requests to go on: a user turn that only asks the assistant to continue what it was writing.

Such a turn has its context in the exchange before it. When a split puts it at the start of a
segment, the segment teaches an answer to a question it does not hold (REFERENCE: "no context").
The splitter keeps it with the exchange before it when both fit in one segment
(:func:`convkit.split.split_conversation`), and otherwise drops it (``no_context``) or, with
``continuations="keep"``, lets it open a segment as other tools do.

A turn is a request to go on when, stripped of punctuation and case, it has at most
:data:`MAX_WORDS` words (at most :data:`MAX_CHARS` characters when it is one run of a script
written without spaces) and starts with one of :data:`OPENINGS` as a whole word: "continue",
"Continue please.", "go on", "keep going", "continue the story from where you stopped",
"繼續未完成的說明" ("continue the unfinished explanation"); not "Continued fractions?".
"""

from __future__ import annotations

import re

__all__ = ["MAX_CHARS", "MAX_WORDS", "OPENINGS", "is_continuation"]

#: How such a request begins, case-folded, in the languages of the ShareGPT dumps.
OPENINGS = (
    "continue",
    "please continue",
    "pls continue",
    "can you continue",
    "could you continue",
    "go on",
    "please go on",
    "keep going",
    "keep writing",
    "carry on",
    "more please",
    "next please",
    "continúa",
    "continuez",
    "continuer",
    "weiter",
    "mach weiter",
    "продолжи",
    "продолжай",
    "продолжить",
    "계속",
    "続けて",
    "続き",
    "继续",
    "繼續",
    "請繼續",
    "请继续",
)
#: At most this many words: a request to go on is short ("continue from where you stopped").
MAX_WORDS = 8
#: At most this many characters when the request has no spaces (Chinese, Japanese).
MAX_CHARS = 16

_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
_OPENING = re.compile(
    "|".join(sorted((re.escape(o) for o in OPENINGS), key=len, reverse=True))
)


def is_continuation(text: str) -> bool:
    """Whether ``text`` (a user turn) only asks the assistant to go on."""
    if len(text) > 20 * MAX_WORDS:
        return False
    words = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.casefold())).strip()
    if not words or words.count(" ") >= MAX_WORDS:
        return False
    if " " not in words and not words.isascii() and len(words) > MAX_CHARS:
        return False
    m = _OPENING.match(words)
    if m is None:
        return False
    # A whole word ("continued fractions?" asks something else), except after an opening in
    # a script without spaces.
    end = m.end()
    return end == len(words) or words[end] == " " or not words[end - 1].isascii()
