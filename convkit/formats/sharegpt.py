"""ShareGPT / Vicuna / WizardLM-v2: ``{"id", "conversations": [{"from", "value"}], ...}``.

Other turn and record fields travel along; one named like the layout's structure (a message's
own ``"from"`` or ``"value"``, a record's own ``"conversations"``) is written as
``"convkit:from"`` and read back under its own name (:mod:`convkit.formats._keys`).
"""

from __future__ import annotations

from typing import Any

from ..model import (
    CONTENT_PARTS,
    MESSAGE_ROLE_ALIASES,
    SHAREGPT_NAMES,
    SHAREGPT_ROLES,
    TURN_META_KEYS,
    Conversation,
    Source,
    Turn,
)
from ._common import parts_for, parts_spell, req_list, req_obj, req_str
from ._keys import ESCAPE, own_fields, put_fields, rekey
from .base import Format, RecordRejected, register, type_name

# Speakers whose role's ShareGPT name is the speaker itself: no metadata to keep.
_PLAIN_ROLES = {name: role for name, role in SHAREGPT_ROLES.items() if SHAREGPT_NAMES[role] == name}
# The fields the reader consumes (the others go to the metadata), and a turn's: the layout's
# structure, so other fields of these names are written escaped (see _keys). A turn's "content"
# and "content_parts" are the turn metadata's own (null content, content parts), carried as they
# are; a list of parts whose text is not the value is not what this writer writes, and reads as
# the turn's own field (unless the turn has that escaped too). A turn's own "role" is written
# bare unless the reader would take it for a role alias.
_READ = frozenset(("id", "conversations"))
_TURN = frozenset(("from", "value", "role", "content", CONTENT_PARTS))
_CARRIED = frozenset(("content", CONTENT_PARTS))
# A turn's own field named "content_parts", as the turn metadata holds it.
_OWN_PARTS = ESCAPE + CONTENT_PARTS


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
    description = '{"id", "conversations": [{"from", "value"}]}; roles human/user, gpt/chatgpt/bing/bard/model, system, function_call/observation'
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
            meta = {"from": speaker} if speaker != SHAREGPT_NAMES[role] else None
            alias = t.get("role")
            if _is_alias(alias, role):
                # An OpenAI role name this writer kept beside the FastChat speaker.
                meta = {"from": alias}
                t = {k: v for k, v in t.items() if k != "role"}
            extra = {_field(k): v for k, v in t.items() if k != "from" and k != "value"}
            parts = extra.get(CONTENT_PARTS)
            if isinstance(parts, list) and _OWN_PARTS not in extra and not parts_spell(parts, value):
                # Parts whose text is not the value are not this writer's (it writes the parts
                # of a message's content, which spell its text): the turn's own field, kept.
                extra[_OWN_PARTS] = extra.pop(CONTENT_PARTS)
            if extra:
                meta = {**(meta or {}), **extra}
            turns.append(Turn(role, value, meta))
        return Conversation(rid, turns, own_fields(record, _READ, _READ), source, record, True)

    def write(self, conv: Conversation) -> dict[str, Any]:
        out: dict[str, Any] = {"id": conv.written_id()}
        names = SHAREGPT_NAMES
        out["conversations"] = [
            _turn_with_meta(t) if t.meta else {"from": names[t.role], "value": t.content}
            for t in conv.turns
        ]
        put_fields(out, conv.meta, _READ)
        return out


def _is_alias(name: Any, role: str) -> bool:
    """Whether a turn's "role" is an OpenAI name (``developer``) for its speaker's role."""
    return isinstance(name, str) and MESSAGE_ROLE_ALIASES.get(name) == role


def _field(key: str) -> str:
    """A turn field's name in the turn metadata. A bare "content" or "content_parts" is the
    metadata's own (null content, content parts), as this writer carries it, whatever it holds;
    the turn's own field of that name is written escaped."""
    return key if key in _CARRIED else rekey(key, _TURN, TURN_META_KEYS)


def _turn_with_meta(t: Turn) -> dict[str, Any]:
    """A turn with other keys (tool calls, message ids): they travel along; "from" is the
    speaker as written, which the FastChat names replace, except an OpenAI role alias
    (``developer``, ``function``), kept as ``"role"``."""
    turn: dict[str, Any] = {"from": SHAREGPT_NAMES[t.role], "value": t.content}
    meta = t.meta
    assert meta is not None
    written = meta.get("from")
    if isinstance(written, str) and MESSAGE_ROLE_ALIASES.get(written) == t.role:
        # "developer" has no ShareGPT speaker: it travels as "role", which the reader maps back.
        turn["role"] = written
    for k, v in meta.items():
        if k == CONTENT_PARTS and isinstance(v, list) and _OWN_PARTS not in meta:
            # After a later step changed the text (HTML conversion), written as the messages
            # writer writes them, so that the reader takes them for the content's parts again
            # and the images stay the turn's.
            written_parts = parts_for(v, t.content)
            if written_parts is not None:
                turn[k] = written_parts
        elif k in _CARRIED:
            turn[k] = v
        elif (
            k == _OWN_PARTS and isinstance(v, list) and CONTENT_PARTS not in meta
            and not parts_spell(v, t.content)
        ):
            turn[CONTENT_PARTS] = v  # bare, as read: the reader takes it for the turn's own
        elif k == "role" and "role" not in turn and not _is_alias(v, t.role):
            turn[k] = v  # the turn's own "role", which the reader cannot take for an alias
        elif k != "from":
            turn[rekey(k, TURN_META_KEYS, _TURN)] = v
    return turn
