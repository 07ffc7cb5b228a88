"""Requests to go on: a user turn that only asks the assistant to continue what it was writing.

Such a turn has its context in the exchange before it. When a split puts it at the start of a
segment, the segment teaches an answer to a question it does not hold (REFERENCE: "no context").
The splitter keeps it with the exchange before it when both fit in one segment
(:func:`convkit.split.split_conversation`), and otherwise drops it (``no_context``) or, with
``continuations="keep"``, lets it open a segment as other tools do.

A turn is a request to go on when, stripped of punctuation and case, it starts with one of
:data:`OPENINGS` as a whole word and has at most :data:`MAX_WORDS` words: "continue", "Continue
please.", "go on", "keep going", "continue the story from where you stopped". A question is
one only when it is short or asks for it ("Continue?", "Can you continue?"; not "Continue to use
Python or switch to Rust?", "Carry on luggage limits?"). Chinese, Japanese and Korean requests
join their words: there the opening may run into at most :data:`MAX_CHARS` more characters and
there is no question mark ("繼續未完成的說明", "continue the unfinished explanation"; not
"继续教育是什么？", "what is continuing education?").
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
#: At most this many characters after a Chinese, Japanese or Korean opening.
MAX_CHARS = 8
#: Openings written in scripts that join words: no word boundary after them.
_JOINED = frozenset(o for o in OPENINGS if not o.isascii() and "\u3000" <= o[0])
#: Openings that are themselves questions ("can you continue?").
_ASKING = ("can you continue", "could you continue")
#: What a request's first letter can be, case-folded: the rest are rejected at once.
_INITIALS = frozenset(o[0] for o in OPENINGS)

_PUNCTUATION = re.compile(r"[^\w\s]+")
_FIRST_LETTER = re.compile(r"[^\W_]")
_SPACES = re.compile(r"\s+")
_OPENING = re.compile(
    "|".join(sorted((re.escape(o) for o in OPENINGS), key=len, reverse=True))
)


def is_continuation(text: str) -> bool:
    """Whether ``text`` (a user turn) only asks the assistant to go on."""
    if len(text) > 20 * MAX_WORDS:
        return False
    head = _FIRST_LETTER.search(text)  # past punctuation: "¡Continúa!", "「続けて」"
    if head is None or head.group().casefold() not in _INITIALS:
        return False
    words = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.casefold())).strip()
    if not words or words.count(" ") >= MAX_WORDS:
        return False
    m = _OPENING.match(words)
    if m is None:
        return False
    opening, end = m.group(), m.end()
    asked = "?" in text or "？" in text
    if opening in _JOINED:
        return not asked and len(words) - end <= MAX_CHARS
    if end < len(words) and words[end] != " ":
        return False  # not a whole word: "continued fractions", "продолжительность"
    return not asked or opening in _ASKING or words.count(" ") < 3
