"""LIMA: ``{"conversations": [str, ...], "source"}``.

Turns alternate user, assistant, user, ... from the first string. An odd count leaves a trailing
user turn: the reader keeps it, and the pipeline's filter chain trims it and counts it under
``trailing_user_turn`` (so it reaches the rejects instead of vanishing, which was the bug of
earlier converters). ``meta["convkit"]["trailing_user_turn"]`` is set on such conversations.
``source`` and any other field go to ``Conversation.meta``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import expect, other_fields, req_list, with_provenance
from .base import Format, register
from .sharegpt import record_id, require_object


@register
class Lima(Format):
    name = "lima"
    description = '{"conversations": [str, ...], "source"}; turns alternate from the user'
    recognises = '"conversations" as a list of strings'
    detect_priority = 40

    def recognise(self, record: Any) -> str | None:
        if not isinstance(record, dict):
            return None
        conv = record.get("conversations")
        if isinstance(conv, list) and conv and all(isinstance(t, str) for t in conv[:2]):
            return self.recognises
        return None

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        record = require_object(record)
        rid = record_id(record, source)
        texts = req_list(record, "conversations")
        turns = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise expect(text, "a string", f"conversations[{i}]")
            turns.append(Turn(USER if i % 2 == 0 else ASSISTANT, text))
        odd = len(texts) % 2 == 1
        meta = with_provenance(
            other_fields(record, ("id", "conversations")),
            self.name,
            trailing_user_turn=True if odd else None,
        )
        yield Conversation(rid, turns, meta, source, record)
