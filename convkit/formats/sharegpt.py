"""ShareGPT / Vicuna / WizardLM-v2: ``{"id", "conversations": [{"from", "value"}], ...}``."""

from __future__ import annotations

from typing import Any

from ..model import MESSAGE_ROLE_ALIASES, SHAREGPT_NAMES, SHAREGPT_ROLES, Conversation, Source, Turn
from ._common import req_list, req_obj, req_str
from .base import Format, RecordRejected, register, type_name

# Speakers whose role's ShareGPT name is the speaker itself: no metadata to keep.
_PLAIN_ROLES = {name: role for name, role in SHAREGPT_ROLES.items() if SHAREGPT_NAMES[role] == name}
# The fields the reader consumes; the others go to the metadata.
_READ = frozenset(("id", "conversations"))


def record_id(record: dict[str, Any], source: Source) -> str:
    """The record's id as a string; a record without one gets ``<file>#<index>``."""
    rid = record.get("id")
    if type(rid) is str and rid:
        return rid
    if rid is None or rid == "":
        return f"{source.file}#{source.index}"
    if isinstance(rid, (str, int)) and not isinstance(rid, bool):
        return str(rid)
    raise RecordRejected(
        "invalid_record", f'expected "id" to be a string or an integer, got {type_name(rid)}', "id"
    )


def require_object(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordRejected("invalid_record", f"expected a JSON object, got {type_name(record)}")
    return record


@register
class ShareGPT(Format):
    name = "sharegpt"
    aliases = ("vicuna", "wizardlm-v2")
    description = '{"id", "conversations": [{"from", "value"}]}; roles human/user, gpt/chatgpt/bing/bard, system'
    recognises = '"conversations" as a list whose first item has "from"'
    claims = ("conversations",)

    def detect(self, record: Any) -> bool:
        return (
            isinstance(record, dict)
            and isinstance(record.get("conversations"), list)
            and all(isinstance(t, dict) and "from" in t for t in record["conversations"][:1])
        )

    def read_one(self, record: Any, source: Source) -> Conversation:
        record = require_object(record)
        rid = record_id(record, source)
        turns_in = req_list(record, "conversations")
        turns = []
        for i, t in enumerate(turns_in):
            # The common turn, {"from": <a known name>, "value": <str>} and nothing else, takes
            # three lookups; anything else goes the long way, which words every error.
            if type(t) is dict and len(t) == 2:
                speaker = t.get("from")
                value = t.get("value")
                if type(value) is str and type(speaker) is str:
                    role = _PLAIN_ROLES.get(speaker)
                    if role is not None:
                        turns.append(Turn(role, value, None))
                        continue
            at = f"conversations[{i}]"
            t = req_obj(t, at)
            speaker = req_str(t, "from", at)
            role = SHAREGPT_ROLES.get(speaker.lower())
            if role is None:
                raise RecordRejected(
                    "unknown_role", f"unknown speaker {speaker!r} in {at}.from", f"{at}.from"
                )
            value = req_str(t, "value", at)
            extra = {k: v for k, v in t.items() if k not in ("from", "value")}
            meta = {"from": speaker} if speaker != SHAREGPT_NAMES[role] else None
            alias = extra.get("role")
            if isinstance(alias, str) and MESSAGE_ROLE_ALIASES.get(alias) == role:
                # An OpenAI role name this writer kept beside the FastChat speaker.
                meta = {"from": extra.pop("role")}
            if extra:
                meta = {**(meta or {}), **extra}
            turns.append(Turn(role, value, meta))
        meta = {} if record.keys() <= _READ else {k: v for k, v in record.items() if k not in _READ}
        return Conversation(rid, turns, meta, source, record, True)

    def write(self, conv: Conversation) -> dict[str, Any]:
        out: dict[str, Any] = {"id": conv.written_id()}
        names = SHAREGPT_NAMES
        out["conversations"] = [
            _turn_with_meta(t) if t.meta else {"from": names[t.role], "value": t.content}
            for t in conv.turns
        ]
        for k, v in conv.meta.items():
            if k not in out:
                out[k] = v
        return out


def _turn_with_meta(t: Turn) -> dict[str, Any]:
    """A turn with other keys (tool calls, message ids): they travel along; "from" is the
    speaker as written, which the FastChat names replace, except an OpenAI role alias
    (``developer``, ``function``), kept as ``"role"``."""
    turn: dict[str, Any] = {"from": SHAREGPT_NAMES[t.role], "value": t.content}
    assert t.meta is not None
    written = t.meta.get("from")
    if (
        isinstance(written, str)
        and MESSAGE_ROLE_ALIASES.get(written) == t.role
        and "role" not in t.meta
    ):
        # "developer" has no ShareGPT speaker: it travels as "role", which the reader maps back.
        turn["role"] = written
    for k, v in t.meta.items():
        if k not in turn:
            turn[k] = v
    return turn
