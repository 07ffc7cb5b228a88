"""Blocked phrases and blocked responses.

FastChat drops a conversation when the lowercase raw HTML of any message contains ``openai`` or
``chatgpt`` as a substring. That matches attributes and URLs, hits "napalm" for "palm" and "palm
tree" for the model "Palm", and a phrase with punctuation used as a regex would let ``GPT-3.5``
match ``GPT-3x5``. Here phrases are escaped and matched as whole words on the converted text
(filters run after the HTML conversion), leaving out link and image destinations
(``[text](url)``: the page's ``href`` and ``src``), and only in the turns of the configured
roles. With ``--html never`` nothing is converted: the text is taken as written, and markup in
it is text, attributes included. Case follows the phrase,
as "smart case" searches do: an all-lowercase phrase matches in any case (``openai`` finds
"OpenAI"), a phrase with a capital letter matches as written (``Palm`` finds "Palm 2", not "a
palm tree").
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from ..errors import ConfigError
from ..model import ASSISTANT, Conversation
from ..scan import contains_folded
from .base import KEEP, Drop, DropFilter, Verdict, register

if TYPE_CHECKING:
    from .config import FilterConfig

FASTCHAT_PHRASES = ("openai", "chatgpt")
FASTCHAT_RESPONSES = ("Too many requests in 1 hour. Try again later.",)


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One compiled alternation of ``phrases`` matched as whole words, each in any case when it
    is all lowercase and as written otherwise (:func:`any_case`).

    ``\\b`` would fail at a phrase's edge that is not a word character (``C++``, ``GPT-3.5.``), so
    the edges are look-arounds instead: no word character just before or just after the match.
    Each word is escaped (``GPT-3.5`` does not match ``GPT-3x5``) and the white space inside a
    phrase matches any run of white space (converted markdown wraps lines).
    """
    alternatives = []
    for phrase in phrases:
        words = phrase.split()
        if not words:
            raise ConfigError(f"expected blocked phrases to be non-empty, got {phrase!r}")
        body = r"\s+".join(re.escape(w) for w in words)
        alternatives.append(f"(?i:{body})" if any_case(phrase) else body)
    if not alternatives:
        raise ConfigError("expected at least one blocked phrase")
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def any_case(phrase: str) -> bool:
    """Whether ``phrase`` matches in any case: it has no capital letter."""
    return phrase == phrase.lower()


# A markdown link or image's destination and title, as the HTML converters write them (a bare
# URL with balanced parentheses one level deep, or <...>): they came from href and src.
_DESTINATION = re.compile(
    r"\]\((?:<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*)"
    r'(?:[ \t]+"(?:[^"\\\n]|\\.)*")?\)'
)


#: Matched by "i" under re.IGNORECASE, and its case folding is itself (checked over every code
#: point by a test): the one such character.
_DOTLESS_I = "\u0131"


@register
class BlockedPhrase(DropFilter):
    name = "blocked_phrase"
    order = 100
    description = (
        "drop conversations containing a blocked phrase (whole words; any case unless the "
        "phrase has a capital letter)"
    )
    reasons: ClassVar[dict[str, str]] = {
        "blocked_phrase": "a turn of a blocked role contains a blocked phrase as whole words",
    }

    def __init__(
        self,
        phrases: Iterable[str] = FASTCHAT_PHRASES,
        roles: Iterable[str] = ("user", "assistant", "system"),
    ) -> None:
        self.phrases = tuple(phrases)
        self.roles = frozenset(roles)
        self.pattern = phrase_pattern(self.phrases)
        # A regex search with look-arounds tries every position of every turn; a substring test
        # of each phrase's first word (one compiled pass over the text for those in any case)
        # is many times faster and rules out almost every turn.
        # Only for ASCII phrases. Phrases in any case are looked for in the case-folded text,
        # the others as written. Folding hides one match of the regex's (?i:): re pairs the
        # dotless "ı" with "i", which no folding gives, so a text with one goes to the regex.
        pretest = all(p.isascii() for p in self.phrases)
        self._firsts: tuple[str, ...] | None = (
            tuple(p.split()[0] for p in self.phrases if any_case(p)) if pretest else None
        )
        self._exact: tuple[str, ...] = (
            tuple(p.split()[0] for p in self.phrases if not any_case(p)) if pretest else ()
        )

    @classmethod
    def from_config(cls, config: FilterConfig) -> BlockedPhrase | None:
        if not config.blocked_phrases or not config.blocked_roles:
            return None
        return cls(config.blocked_phrases, config.blocked_roles)

    def apply(self, conv: Conversation) -> Verdict:
        firsts, exact = self._firsts, self._exact
        for t in conv.turns:
            if t.role not in self.roles:
                continue
            text = t.content
            if firsts is not None and not self._may_match(text, firsts, exact):
                continue
            if "](" in text:
                text = _DESTINATION.sub("]", text)
            m = self.pattern.search(text)
            if m is not None:
                return Drop(self.name, f"matched {m.group(0)!r} in a turn of role {t.role}")
        return KEEP

    @staticmethod
    def _may_match(text: str, firsts: tuple[str, ...], exact: tuple[str, ...]) -> bool:
        # Loops, not any(...): no generator per turn.
        for w in exact:
            if w in text:
                return True
        return bool(firsts) and (contains_folded(text, firsts) or _DOTLESS_I in text)

    def check(self, conv: Conversation) -> str | None:
        v = self.apply(conv)
        return v.reason if isinstance(v, Drop) else None


@register
class BlockedResponse(DropFilter):
    """Drops a conversation with an assistant turn that starts with a blocked response — the
    error pages ShareGPT saved as answers. As in FastChat the match is case-sensitive and allows
    a leading ``!`` (the warning icon the HTML conversion leaves); leading white space is ignored.
    """

    name = "blocked_response"
    order = 90
    description = "drop conversations where an assistant turn starts with a blocked response"
    reasons: ClassVar[dict[str, str]] = {
        "blocked_response": "an assistant turn starts with a blocked response "
        "(\"Too many requests in 1 hour…\")",
    }

    def __init__(self, prefixes: Iterable[str] = FASTCHAT_RESPONSES) -> None:
        self.prefixes = tuple(prefixes)

    @classmethod
    def from_config(cls, config: FilterConfig) -> BlockedResponse | None:
        return cls(config.blocked_responses) if config.blocked_responses else None

    def check(self, conv: Conversation) -> str | None:
        for t in conv.turns:
            if t.role != ASSISTANT:
                continue
            text = t.content.lstrip()
            if text.startswith("!"):
                text = text[1:].lstrip()
            if text.startswith(self.prefixes):
                return self.name
        return None
