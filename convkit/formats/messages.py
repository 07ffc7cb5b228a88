"""OpenAI / Hugging Face chat: ``{"id"?, "messages": [{"role", "content"}], "tools"?}``.

Roles are ``system``, ``user``, ``assistant`` and ``tool``, in any case (``USER`` is written back
as ``user``); OpenAI's ``developer`` reads as
``system`` and the legacy ``function`` as ``tool`` (the name as written is kept in
``Turn.meta["from"]`` and written back; the ShareGPT writer keeps it as ``"role"``, which the
ShareGPT reader maps back). ``content`` may be a string, null (an assistant turn that only calls
tools: read as ``""``, written back as null), or a list of parts: the text parts (``text``, ``input_text``,
``output_text``) are joined with ``"\\n"`` into the turn's text, and the whole list is kept in
``Turn.meta["content_parts"]`` so that images, audio and files stay referenced as they were.
Other message keys (``tool_calls``, ``tool_call_id``, ``name``, ...) are kept in ``Turn.meta``,
other record keys (``tools``, ...) in ``Conversation.meta``.

The writer writes ``content_parts`` back as they were when the text is unchanged; when a later
step changed the text, the new text becomes one text part followed by the non-text parts.
A field named like the layout's structure (a message's own ``"role"`` from a ShareGPT turn, a
record's own ``"messages"``) is written as ``"convkit:role"``, and read back under its own name
(:mod:`convkit.formats._keys`).
"""

from __future__ import annotations

from typing import Any

from ..model import (
    CONTENT_PARTS,
    MESSAGE_ROLE_ALIASES,
    ROLES,
    SHAREGPT_ROLES,
    TURN_META_KEYS,
    Conversation,
    Source,
    Turn,
)
from ._common import join_text_parts, parts_for
from ._keys import escape, own_fields, put_fields, rekey
from .base import Format, RecordRejected, register, type_name
from .sharegpt import record_id, require_object

#: Role names other tools write, and the role each means.
ROLE_ALIASES = MESSAGE_ROLE_ALIASES
#: ShareGPT speaker names found as role values, read as the roles they name.
SPEAKERS = frozenset(SHAREGPT_ROLES) - frozenset(ROLES)
#: Where a message's list of parts is kept (see model).
PARTS_KEY = CONTENT_PARTS


# The fields the reader consumes (the others go to the metadata) and a message's: the layout's
# structure, so other fields of these names are written escaped (see _keys).
_READ = frozenset(("id", "messages"))
_MESSAGE = frozenset(("role", "content"))
# Where other tools keep the messages (LLaMA-Factory's ShareGPT layout with role/content tags,
# lmsys-chat-1m): read when there is no "messages" and the first item has a "role".
_OTHER_KEYS = ("conversations", "conversation")


def _list_key(record: dict[str, Any]) -> str | None:
    """The key holding the messages: "messages" when it is a list, else another key as above."""
    if isinstance(record.get("messages"), list):
        return "messages"
    if "messages" in record:
        return None
    for key in _OTHER_KEYS:
        items = record.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            first = items[0]
            # ShareGPT turns may carry "role" too: the ShareGPT writer keeps an OpenAI role
            # name ("developer") there beside "from" and "value".
            if "role" in first and not ("from" in first and "value" in first):
                return key
    return None


@register
class Messages(Format):
    name = "messages"
    aliases = ("openai", "chatml-json")
    description = (
        '{"messages": [{"role", "content"}]}; roles system/user/assistant/tool; also '
        '"conversations" or "conversation" holding such messages'
    )
    recognises = (
        '"messages" as a list; or "conversations" or "conversation" as a list whose first '
        'item has "role"'
    )
    detect_priority = 30
    claims = ("messages",)

    def detect(self, record: Any) -> bool:
        return isinstance(record, dict) and _list_key(record) is not None

    def recognise(self, record: Any) -> str | None:
        key = _list_key(record) if isinstance(record, dict) else None
        if key is None:
            return None
        return '"messages" as a list' if key == "messages" else f'"{key}" as a list of roles'

    def read_one(self, record: Any, source: Source) -> Conversation:
        record = require_object(record)
        rid = record_id(record, source)
        key = _list_key(record) or "messages"
        msgs = record.get(key)
        if not isinstance(msgs, list):
            if key not in record:
                raise RecordRejected("invalid_record", 'missing "messages"', "messages")
            raise RecordRejected(
                "invalid_record",
                f'expected "messages" to be a list, got {type_name(msgs)}',
                "messages",
            )
        turns = []
        for i, m in enumerate(msgs):
            # The common message, {"role": <a role>, "content": <str>} and nothing else, takes
            # three lookups; anything else goes the long way, which words every error.
            if type(m) is dict and len(m) == 2:
                role = m.get("role")
                content = m.get("content")
                if type(content) is str and role in ROLES:
                    turns.append(Turn(role, content, None))
                    continue
            at = f"{key}[{i}]"
            if not isinstance(m, dict):
                raise RecordRejected(
                    "invalid_record", f"expected {at} to be an object, got {type_name(m)}", at
                )
            role = m.get("role")
            if not isinstance(role, str):
                raise RecordRejected(
                    "invalid_record",
                    f"expected {at}.role to be a string, got {type_name(role)}",
                    f"{at}.role",
                )
            extra = {
                rekey(k, _MESSAGE, TURN_META_KEYS): v
                for k, v in m.items()
                if k not in _MESSAGE
            }
            written = role
            if role not in ROLES and role.lower() != role:
                role = role.lower()  # "USER", "Assistant": read as the role, written lower case
            if role in ROLE_ALIASES:
                extra["from"] = role
                role = ROLE_ALIASES[role]
            elif role in SPEAKERS:
                # TRL's ShareGPT conversion leaves "human" and "gpt" as roles: read as the
                # roles they are and written as those, not kept (no template knows them).
                role = SHAREGPT_ROLES[role]
            elif role not in ROLES:
                raise RecordRejected(
                    "unknown_role", f"unknown role {written!r} in {at}.role", f"{at}.role"
                )
            content = m.get("content")
            if content is None:
                # A message that only calls tools; written back as null, not "".
                extra["content"] = None
                content = ""
            elif isinstance(content, list):
                extra[PARTS_KEY] = content
                content = join_text_parts(content, f"{at}.content")
            elif not isinstance(content, str):
                raise RecordRejected(
                    "invalid_record",
                    f"expected {at}.content to be a string or a list of parts, got {type_name(content)}",
                    f"{at}.content",
                )
            turns.append(Turn(role, content, extra or None))
        read = _READ if key == "messages" else frozenset(("id", key))
        return Conversation(rid, turns, own_fields(record, read, _READ), source, record)

    def write(self, conv: Conversation) -> dict[str, Any]:
        out: dict[str, Any] = {"id": conv.written_id()}
        out["messages"] = [
            message_dict(t) if t.meta else {"role": t.role, "content": t.content}
            for t in conv.turns
        ]
        put_fields(out, conv.meta, _READ)
        return out


def message_dict(t: Turn) -> dict[str, Any]:
    """One turn as an OpenAI / Hugging Face message (also what chat templates are given)."""
    if not t.meta:
        return {"role": t.role, "content": t.content}
    role = t.role
    content: Any = t.content
    meta = t.meta or {}
    written = meta.get("from")
    if isinstance(written, str) and ROLE_ALIASES.get(written) == role:
        role = written
    parts = meta.get(PARTS_KEY)
    if isinstance(parts, list):
        written_parts = parts_for(parts, t.content)
        if written_parts is not None:
            content = written_parts
    if meta.get("content", "") is None and not t.content:
        content = None  # read as null (only calls tools) and still without text
    m: dict[str, Any] = {"role": role, "content": content}
    foreign = []
    for k, v in meta.items():
        if k not in TURN_META_KEYS:
            m[rekey(k, TURN_META_KEYS, _MESSAGE)] = v
        elif (k == "content" and v is not None) or (k == PARTS_KEY and not isinstance(v, list)):
            foreign.append((k, v))
    for k, v in foreign:
        # A ShareGPT turn's own "content" (text beside its "value"), carried under the metadata's
        # name: written as the message's field of that name, unless the turn has that too.
        m.setdefault(escape(k, _MESSAGE), v)
    return m
