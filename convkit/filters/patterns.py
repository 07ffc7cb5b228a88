"""FastChat's optional pattern rules, off by default: long runs of one digit, restarted lists."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from ..model import Conversation
from .base import DropFilter, register

if TYPE_CHECKING:
    from .config import FilterConfig

#: FastChat's run length: ``(\d)\1{8}``, one digit nine times in a row.
FASTCHAT_REPEATED_DIGITS = 9


@register
class RepeatedDigits(DropFilter):
    """Drops a conversation with one digit repeated ``run`` times in a row in any turn
    (degenerate generations such as ``0.000000000001``)."""

    name = "repeated_digits"
    order = 110
    description = "drop conversations where a digit repeats N times in a row (off by default)"
    reasons: ClassVar[dict[str, str]] = {
        "repeated_digits": "a turn repeats one digit run times in a row (FastChat: 9)",
    }

    def __init__(self, run: int = FASTCHAT_REPEATED_DIGITS) -> None:
        self.run = run
        # Guards against degenerate number output; \d is any Unicode digit, as in FastChat.
        self.pattern = re.compile(rf"(\d)\1{{{run - 1}}}")

    @classmethod
    def from_config(cls, config: FilterConfig) -> RepeatedDigits | None:
        return None if config.repeated_digits is None else cls(config.repeated_digits)

    def check(self, conv: Conversation) -> str | None:
        for t in conv.turns:
            if self.pattern.search(t.content):
                return self.name
        return None


_ITEM_ONE = "\n1. "


def has_restarted_list(text: str) -> bool:
    """True where FastChat's ``\\n1\\. [^2]*\\n1\\. `` matches: a numbered list restarts at 1
    without reaching 2 (a broken rendering, e.g. sharegpt.com/c/1pREAGO). The start of the text
    counts as a new line: FastChat's regex misses a list that opens the turn.

    The regex backtracks over the whole rest of the text from every ``\\n1. `` (quadratic on long
    texts); the same test runs in one pass here: the pattern matches if and only if some two
    *consecutive* occurrences of ``\\n1. `` have no ``2`` between them.
    """
    if text.startswith(_ITEM_ONE[1:]):
        body = len(_ITEM_ONE) - 1
    else:
        start = text.find(_ITEM_ONE)
        if start == -1:
            return False
        body = start + len(_ITEM_ONE)
    while True:
        nxt = text.find(_ITEM_ONE, body)
        if nxt == -1:
            return False
        if text.find("2", body, nxt) == -1:
            return True
        body = nxt + len(_ITEM_ONE)


@register
class RestartedList(DropFilter):
    name = "restarted_numbered_list"
    order = 120
    description = "drop conversations where a numbered list restarts at 1 (off by default)"
    reasons: ClassVar[dict[str, str]] = {
        "restarted_numbered_list": "a turn has a numbered list that restarts at 1 before item 2",
    }

    @classmethod
    def from_config(cls, config: FilterConfig) -> RestartedList | None:
        return cls() if config.restarted_lists else None

    def check(self, conv: Conversation) -> str | None:
        for t in conv.turns:
            if has_restarted_list(t.content):
                return self.name
        return None
