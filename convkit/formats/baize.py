"""Baize self-chat: ``{"topic"?, "input": "<preamble>\\n[|Human|] ... \\n[|AI|] ...\\n[|Human|] "}``.

The text is split on the ``[|Human|]`` marker into rounds and each round on ``[|AI|]``. The
preamble before the first ``[|Human|]`` ("The conversation between human and AI assistant.") is
dropped, and so are empty rounds (Baize's files end with an empty ``[|Human|]``). Turn text is
stripped. A round with two or more ``[|AI|]`` markers is rejected (``repeated_ai_marker``), as is
a round without any, or with an empty answer, that is not the last (``missing_ai_marker``,
``empty_ai_turn``); naive splitters crash on the
first and silently merge turns on the second. A last round without an answer is kept as a
trailing user turn, which the pipeline trims and counts (``trailing_user_turn``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import other_fields, req_str, with_provenance
from .base import Format, RecordRejected, register
from .sharegpt import record_id, require_object

HUMAN = "[|Human|]"
AI = "[|AI|]"


@register
class Baize(Format):
    name = "baize"
    reasons: ClassVar[dict[str, str]] = {
        "no_turns": "the record's text holds no turn (no marker, or every round empty)",
        "repeated_ai_marker": 'a Baize round holds more than one "[|AI|]" marker',
        "missing_ai_marker": 'a Baize round other than the last has no "[|AI|]" marker',
        "empty_ai_turn": "a Baize round other than the last has an empty answer",
    }
    description = '{"topic"?, "input": "... [|Human|] ... [|AI|] ..."}'
    recognises = 'string "input" holding "[|Human|]" markers'
    detect_priority = 50

    def recognise(self, record: Any) -> str | None:
        if (
            isinstance(record, dict)
            and isinstance(record.get("input"), str)
            and HUMAN in record["input"]
            and "output" not in record
        ):
            return self.recognises
        return None

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        record = require_object(record)
        rid = record_id(record, source)
        text = req_str(record, "input")
        if HUMAN not in text:
            raise RecordRejected("no_turns", f'"input" holds no "{HUMAN}" marker', "input")
        rounds = text.split(HUMAN)[1:]  # [0] is the preamble
        turns = []
        for n, rnd in enumerate(rounds):
            parts = rnd.split(AI)
            if len(parts) > 2:
                raise RecordRejected(
                    "repeated_ai_marker",
                    f'round {n + 1} has {len(parts) - 1} "{AI}" markers',
                    "input",
                )
            human = parts[0].strip()
            ai = parts[1].strip() if len(parts) == 2 else ""
            if not human and not ai:
                continue  # an empty round: Baize's trailing "[|Human|] " and the like
            if not ai and _has_more(rounds[n + 1 :]):
                # An unanswered round in the middle would make two user turns in a row.
                if len(parts) == 1:
                    raise RecordRejected(
                        "missing_ai_marker",
                        f'round {n + 1} has no "{AI}" marker but is not the last',
                        "input",
                    )
                raise RecordRejected(
                    "empty_ai_turn",
                    f"round {n + 1} has an empty answer but is not the last",
                    "input",
                )
            turns.append(Turn(USER, human))
            if ai:
                turns.append(Turn(ASSISTANT, ai))
        if not turns:
            raise RecordRejected("no_turns", "every round is empty", "input")
        meta = with_provenance(other_fields(record, ("id", "input")), self.name)
        yield Conversation(rid, turns, meta, source, record)


def _has_more(rounds: list[str]) -> bool:
    """True when a later round holds any text (so an unanswered round is not the last one)."""
    return any(r.replace(AI, "").strip() for r in rounds)
