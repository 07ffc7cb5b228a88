"""Structure: a conversation starts with the user and ends with the assistant, roles alternate.

FastChat removes one leading non-human message and one trailing human message, then drops a
conversation whose roles do not go human, gpt, human, gpt… or that has one message or none.
Here the leading system turns are the system prompt and stay; the whole leading run of other
turns and the whole trailing run of user/tool turns are trimmed (FastChat reaches the same
result for a trailing run through its even-length cut), and tool turns are allowed between
assistant turns.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..model import ASSISTANT, TOOL, USER, Conversation
from .base import DropFilter, Part, TrimFilter, prompt_length, register

if TYPE_CHECKING:
    from .config import FilterConfig


@register
class LeadingNonUser(TrimFilter):
    """Trims the turns between the system prompt and the first user turn."""

    name = "leading_non_user"
    order = 20
    shape_only = True
    description = "trim turns before the first user turn (after the system prompt)"
    reasons: ClassVar[dict[str, str]] = {
        "leading_non_user": "turns before the first user turn, after the system prompt (trimmed)",
    }

    def trim(self, conv: Conversation) -> list[Part]:
        start = prompt_length(conv)
        i = start
        while i < len(conv.turns) and conv.turns[i].role != USER:
            i += 1
        return [Part(start, i, self.name)] if i > start else []


_TRAILING = {USER: "trailing_user_turn", TOOL: "trailing_tool_turn"}


@register
class TrailingUserTurn(TrimFilter):
    """Trims the trailing user (and tool) turns, which no assistant turn answers."""

    name = "trailing_user_turn"
    order = 50
    shape_only = True
    description = "trim trailing user and tool turns that no assistant turn answers"
    reasons: ClassVar[dict[str, str]] = {
        "trailing_user_turn": "a user turn at the end, with no answer (trimmed)",
        "trailing_tool_turn": "a tool turn at the end, with no answer (trimmed)",
    }

    def trim(self, conv: Conversation) -> list[Part]:
        turns = conv.turns
        j = len(turns)
        floor = prompt_length(conv)
        while j > floor and turns[j - 1].role in _TRAILING:
            j -= 1
        parts: list[Part] = []
        for i in range(j, len(turns)):
            reason = _TRAILING[turns[i].role]
            if parts and parts[-1].reason == reason:
                parts[-1] = Part(parts[-1].start, i + 1, reason)
            else:
                parts.append(Part(i, i + 1, reason))
        return parts


# After the system prompt: user, then assistant; an assistant turn may call tools, whose turns
# are followed by another assistant turn. ``None`` is the state before the first turn.
_NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({USER}),
    USER: frozenset({ASSISTANT}),
    ASSISTANT: frozenset({USER, TOOL}),
    TOOL: frozenset({TOOL, ASSISTANT}),
}


@register
class RolesAlternate(DropFilter):
    """Drops a conversation whose roles, after the system prompt, are not
    ``user assistant (tool+ assistant)*`` repeated, ending with an assistant turn."""

    name = "roles_not_alternating"
    order = 60
    shape_only = True
    description = "drop conversations whose roles do not go user, assistant, user, assistant…"
    reasons: ClassVar[dict[str, str]] = {
        "roles_not_alternating": "after the system prompt, roles do not alternate user/assistant "
        "(tool turns allowed between assistant turns; a system turn later on is not allowed)",
    }

    def check(self, conv: Conversation) -> str | None:
        prev: str | None = None
        for t in conv.turns[prompt_length(conv):]:
            if t.role not in _NEXT[prev]:
                return self.name
            prev = t.role
        if prev is not None and prev != ASSISTANT:
            return self.name
        return None


@register
class TooFewTurns(DropFilter):
    """Drops a conversation with fewer than ``min_turns`` turns after the system prompt."""

    name = "too_few_turns"
    order = 70
    shape_only = True
    description = "drop conversations with fewer than --min-turns turns (system prompt not counted)"
    reasons: ClassVar[dict[str, str]] = {
        "too_few_turns": "fewer than min_turns turns after the system prompt",
    }

    def __init__(self, min_turns: int = 2) -> None:
        self.min_turns = min_turns

    @classmethod
    def from_config(cls, config: FilterConfig) -> TooFewTurns | None:
        return cls(config.min_turns) if config.min_turns > 0 else None

    def check(self, conv: Conversation) -> str | None:
        if len(conv.turns) - prompt_length(conv) < self.min_turns:
            return self.name
        return None
