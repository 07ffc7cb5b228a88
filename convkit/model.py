"""The one conversation model every reader produces and every writer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SYSTEM = "system"
USER = "user"
ASSISTANT = "assistant"
TOOL = "tool"
ROLES = (SYSTEM, USER, ASSISTANT, TOOL)

#: OpenAI's other names for roles: ``developer`` (newer models' system) and the legacy
#: ``function`` (a tool's answer). Readers map them; the name as written is kept in
#: ``Turn.meta["from"]`` and written back by writers that can hold it.
MESSAGE_ROLE_ALIASES: dict[str, str] = {"developer": SYSTEM, "function": TOOL}

#: Speaker names seen in real ShareGPT dumps (and Vicuna/WizardLM copies), mapped to roles.
SHAREGPT_ROLES: dict[str, str] = {
    "human": USER,
    "user": USER,
    "gpt": ASSISTANT,
    "chatgpt": ASSISTANT,
    "bing": ASSISTANT,
    "bard": ASSISTANT,
    "assistant": ASSISTANT,
    "system": SYSTEM,
    "tool": TOOL,
    "function": TOOL,
    # LLaMA-Factory's ShareGPT with tools: the assistant's call, then the tool's result.
    "function_call": ASSISTANT,
    "observation": TOOL,
    "model": ASSISTANT,  # Gemini's name for the assistant
}

#: The inverse used by the ShareGPT writer (FastChat's speaker names).
SHAREGPT_NAMES: dict[str, str] = {SYSTEM: "system", USER: "human", ASSISTANT: "gpt", TOOL: "tool"}


@dataclass(slots=True)
class Source:
    """Where a record came from: the input's display name and the record's 0-based index in it."""

    file: str
    index: int
    line: int | None = None  # 1-based line for JSON Lines input

    def where(self) -> str:
        if self.line is not None:
            return f"{self.file} line {self.line}"
        return f"{self.file} record {self.index}"


@dataclass(slots=True)
class Turn:
    role: str
    content: str
    meta: dict[str, Any] | None = None  # speaker name as written, extra per-turn keys


#: Where readers keep a message's content when it is a list of parts (OpenAI's form), and the
#: part types that carry text; the other parts (images, audio, files) are kept by reference.
CONTENT_PARTS = "content_parts"
TEXT_PARTS = ("text", "input_text", "output_text")

#: The names :attr:`Turn.meta` uses for itself: the speaker as written, null content (a message
#: that only calls tools) and content parts. A message's own field of one of these names is kept
#: escaped (see :mod:`convkit.formats._keys`).
TURN_META_KEYS = frozenset(("from", "content", CONTENT_PARTS))


def media_parts(turn: Turn) -> list[Any]:
    """The turn's content parts that are not text (images, audio, files): a turn with one is
    not empty though its text is, and a writer that holds text only cannot write it whole."""
    meta = turn.meta
    parts = meta.get(CONTENT_PARTS) if meta else None
    if not isinstance(parts, list):
        return []
    return non_text_parts(parts)


def non_text_parts(parts: list[Any]) -> list[Any]:
    """The parts of a content list that are not text parts."""
    return [p for p in parts if not (isinstance(p, dict) and p.get("type") in TEXT_PARTS)]


def tool_calls(turn: Turn) -> Any:
    """The tool calls a turn makes (OpenAI's ``tool_calls``, or the legacy ``function_call``),
    kept in its metadata by the readers; None when it makes none."""
    meta = turn.meta
    if not meta:
        return None
    return meta.get("tool_calls") or meta.get("function_call") or None


@dataclass(slots=True)
class Conversation:
    id: str
    turns: list[Turn]
    meta: dict[str, Any] = field(default_factory=dict)  # other top-level fields (model, lang, ...)
    source: Source | None = None
    raw: Any = None  # the record as read, kept for the rejects file
    # Read from a scraped chat page (ShareGPT): its assistant turns may be the page's HTML and
    # its user turns may start with the page's "2 / 2" counter, which html="auto" cleans.
    scraped: bool = False

    def with_turns(self, turns: list[Turn]) -> Conversation:
        """The same conversation with other turns (``dataclasses.replace``, without its cost)."""
        return Conversation(self.id, turns, self.meta, self.source, self.raw, self.scraped)

    def written_id(self) -> str | int:
        """The id as JSON writers write it: the record's own integer id stays an integer (so
        that joins on the source's ids still work); any other id, a segment's included, is
        the string :attr:`id`."""
        raw = self.raw
        if type(raw) is dict:
            rid = raw.get("id")
            if type(rid) is int and str(rid) == self.id:
                return rid
        return self.id

    def roles(self) -> list[str]:
        return [t.role for t in self.turns]

    def system_turns(self) -> list[Turn]:
        """The leading system turns (the system prompt), which every split segment carries."""
        out = []
        for t in self.turns:
            if t.role != SYSTEM:
                break
            out.append(t)
        return out
