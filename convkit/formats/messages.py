"""OpenAI / Hugging Face chat: ``{"id"?, "messages": [{"role", "content"}]}``."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import ROLES, Conversation, Source, Turn
from .base import Format, RecordRejected, register, type_name
from .sharegpt import record_id, require_object


@register
class Messages(Format):
    name = "messages"
    aliases = ("openai", "chatml-json")
    description = '{"messages": [{"role", "content"}]}; roles system/user/assistant/tool'

    def detect(self, record: Any) -> bool:
        return isinstance(record, dict) and isinstance(record.get("messages"), list)

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        record = require_object(record)
        rid = record_id(record, source)
        msgs = record.get("messages")
        if not isinstance(msgs, list):
            if "messages" not in record:
                raise RecordRejected("invalid_record", 'missing "messages"', "messages")
            raise RecordRejected(
                "invalid_record", f'expected "messages" to be a list, got {type_name(msgs)}', "messages"
            )
        turns = []
        for i, m in enumerate(msgs):
            at = f"messages[{i}]"
            if not isinstance(m, dict):
                raise RecordRejected("invalid_record", f"expected {at} to be an object, got {type_name(m)}", at)
            role = m.get("role")
            if not isinstance(role, str):
                raise RecordRejected(
                    "invalid_record", f"expected {at}.role to be a string, got {type_name(role)}", f"{at}.role"
                )
            if role not in ROLES:
                raise RecordRejected("unknown_role", f"unknown role {role!r} in {at}.role", f"{at}.role")
            content = m.get("content")
            if content is None:
                content = ""
            if not isinstance(content, str):
                raise RecordRejected(
                    "invalid_record",
                    f"expected {at}.content to be a string, got {type_name(content)}",
                    f"{at}.content",
                )
            extra = {k: v for k, v in m.items() if k not in ("role", "content")}
            turns.append(Turn(role, content, extra or None))
        meta = {k: v for k, v in record.items() if k not in ("id", "messages")}
        yield Conversation(rid, turns, meta, source, record)

    def write(self, conv: Conversation) -> dict[str, Any]:
        out: dict[str, Any] = {"id": conv.id}
        msgs = []
        for t in conv.turns:
            m: dict[str, Any] = {"role": t.role, "content": t.content}
            if t.meta:
                for k, v in t.meta.items():
                    if k != "from" and k not in m:
                        m[k] = v
            msgs.append(m)
        out["messages"] = msgs
        for k, v in conv.meta.items():
            if k not in out:
                out[k] = v
        return out
