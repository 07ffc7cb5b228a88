"""Content: empty or unprintable turns, and conversations too short to be worth training on.

FastChat stops at the first message whose converted value is empty or starts with an
unprintable character and keeps the messages before it; these filters do the same as a trim
(the cut turns go to the rejects), after which the structure filters look again. Two
exceptions, where cutting would throw away exchanges that do not depend on the bad turn:

* a bad turn before the exchanges begin (in the system prompt, or before the first good user
  turn: the structure filters trim what leads the conversation anyway) is trimmed alone;
* so is a bad turn that repeats the speaker of the turn before it. ShareGPT pages hold such
  repeats (a question, then an empty second "human" message, then the answer): without it the
  exchange is whole and the roles alternate again, where a cut would lose the rest of the
  conversation (FastChat drops it whole, as wrongly formatted).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from ..model import USER, Conversation, Turn, media_parts, tool_calls
from .base import DropFilter, Part, TrimFilter, prompt_length, register

if TYPE_CHECKING:
    from .config import FilterConfig


# The first character that str.strip would keep (without copying the text to find it).
_FIRST_VISIBLE = re.compile(r"\s*(\S)")


class _CutBefore(TrimFilter):
    """Cuts the conversation before its first bad turn; a bad turn before the first good user
    turn, or one that repeats the previous turn's speaker, goes alone. These run before the
    structure filters, which then see the conversation without them."""

    def bad(self, content: str) -> bool:
        raise NotImplementedError

    def bad_turn(self, turn: Turn) -> bool:
        return self.bad(turn.content)

    def all_good(self, turns: list[Turn]) -> bool:
        """No turn is bad (the common case: a subclass may check it without a call per turn)."""
        bad = self.bad_turn
        for t in turns:  # a loop, not any(...): no generator per conversation
            if bad(t):
                return False
        return True

    def trim(self, conv: Conversation) -> list[Part]:
        turns = conv.turns
        if self.all_good(turns):
            return []
        prompt = prompt_length(conv)
        parts: list[Part] = []
        started = False  # a good user turn came before: the exchanges have begun
        for i, t in enumerate(turns):
            if not self.bad_turn(t):
                started = started or (i >= prompt and t.role == USER)
                continue
            if not started or turns[i - 1].role == t.role:
                parts.append(Part(i, i + 1, self.name))
                continue
            parts.append(Part(i, len(turns), self.name))
            break
        return parts


@register
class EmptyTurn(_CutBefore):
    name = "empty_turn"
    order = 14
    shape_only = True  # the cut depends on the roles and on which turns are bad
    description = (
        "cut a conversation before its first empty (or white-space only) turn; "
        "an empty repeat of the previous speaker goes alone"
    )
    reasons: ClassVar[dict[str, str]] = {
        "empty_turn": "an empty or white-space only turn (one that calls tools, or holds an "
        "image or other non-text part, is not empty) "
        "and every turn after it (trimmed); alone before the first good user turn or when it "
        "repeats the previous speaker",
    }

    def bad(self, content: str) -> bool:
        return not content or content.isspace()  # isspace stops at the first other character

    def bad_turn(self, turn: Turn) -> bool:
        c = turn.content
        return (not c or c.isspace()) and not _whole_without_text(turn)

    def all_good(self, turns: list[Turn]) -> bool:
        for t in turns:
            c = t.content
            if (not c or c.isspace()) and not _whole_without_text(t):
                return False
        return True


def calls_tools(turn: Turn) -> bool:
    """Whether the turn calls tools: an assistant message that only does so has no text, and
    is whole without it."""
    return tool_calls(turn) is not None


def _whole_without_text(turn: Turn) -> bool:
    # A message that only calls tools, or only shows an image, says something all the same.
    return calls_tools(turn) or bool(media_parts(turn))


@register
class UnprintableTurn(_CutBefore):
    name = "unprintable_turn"
    order = 15
    shape_only = True  # the cut depends on the roles and on which turns are bad
    description = (
        "cut a conversation before its first turn starting with an unprintable character; "
        "such a repeat of the previous speaker goes alone"
    )
    reasons: ClassVar[dict[str, str]] = {
        "unprintable_turn": "a turn whose first non-space character is not printable (a control, "
        "format or unassigned character, as str.isprintable says) and every turn after it "
        "(trimmed); alone before the first good user turn or when it repeats the previous speaker",
    }

    def bad(self, content: str) -> bool:
        first = content[:1]
        if first and not first.isspace():  # most turns: no white space to skip, no regex
            return not first.isprintable()
        m = _FIRST_VISIBLE.match(content)
        return m is not None and not m.group(1).isprintable()


@register
class TooShort(DropFilter):
    """Drops a conversation whose turns after the system prompt hold fewer than ``min_chars``
    characters in total (each turn counted without its surrounding white space)."""

    name = "too_short"
    order = 80
    description = "drop conversations with fewer than --min-chars characters (system prompt aside)"
    reasons: ClassVar[dict[str, str]] = {
        "too_short": "fewer than min_chars characters in the turns after the system prompt",
    }

    def __init__(self, min_chars: int = 16) -> None:
        self.min_chars = min_chars

    @classmethod
    def from_config(cls, config: FilterConfig) -> TooShort | None:
        return cls(config.min_chars) if config.min_chars > 0 else None

    def check(self, conv: Conversation) -> str | None:
        total = 0
        for t in conv.turns[prompt_length(conv):]:
            total += len(t.content.strip())
            if total >= self.min_chars:
                return None
        return self.name
