"""Small helpers shared by the readers: typed field access with exact messages, metadata."""

from __future__ import annotations

from typing import Any

from ..model import TEXT_PARTS, non_text_parts
from .base import PROVENANCE_KEY, RecordRejected, type_name


def label(key: str) -> str:
    """How a field is named in messages: top-level keys quoted, paths (``a[0].b``) as they are."""
    return key if ("[" in key or "." in key) else f'"{key}"'


def expect(value: Any, what: str, key: str) -> RecordRejected:
    """The rejection for a field of the wrong type: ``expected "x" to be a string, got array``."""
    return RecordRejected(
        "invalid_record", f"expected {label(key)} to be {what}, got {type_name(value)}", key
    )


def missing(key: str) -> RecordRejected:
    return RecordRejected("invalid_record", f"missing {label(key)}", key)


def req_str(obj: dict[str, Any], key: str, at: str | None = None) -> str:
    """``obj[key]`` when it is a string; missing or another type is an ``invalid_record``."""
    path = key if at is None else f"{at}.{key}"
    if key not in obj:
        raise missing(path)
    value = obj[key]
    if not isinstance(value, str):
        raise expect(value, "a string", path)
    return value


def opt_str(obj: dict[str, Any], key: str, at: str | None = None) -> str:
    """``obj[key]`` when it is a string, ``""`` when missing or null; other types are rejected."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise expect(value, "a string", key if at is None else f"{at}.{key}")
    return value


def req_list(obj: dict[str, Any], key: str, at: str | None = None) -> list[Any]:
    path = key if at is None else f"{at}.{key}"
    if key not in obj:
        raise missing(path)
    value = obj[key]
    if not isinstance(value, list):
        raise expect(value, "a list", path)
    return value


def req_obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise expect(value, "an object", path)
    return value


def is_str(record: Any, *keys: str) -> bool:
    return all(isinstance(record.get(k), str) for k in keys)


def other_fields(record: dict[str, Any], used: tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
    """The record's fields a reader did not consume: they go to ``Conversation.meta``."""
    return {k: v for k, v in record.items() if k not in used}


def with_provenance(meta: dict[str, Any], reader: str, **rules: Any) -> dict[str, Any]:
    """``meta`` with ``meta["convkit"]`` saying which reader and rules made the conversation.

    A record that already carries provenance (convkit output read again) keeps the earlier
    entries the new reader does not set.
    """
    prev = meta.get(PROVENANCE_KEY)
    prov: dict[str, Any] = dict(prev) if isinstance(prev, dict) else {}
    prov["reader"] = reader
    for k, v in rules.items():
        if v is not None:
            prov[k] = v
    meta[PROVENANCE_KEY] = prov
    return meta


def join_text_parts(parts: list[Any], at: str) -> str:
    """The text of a list of content parts, checking each part's shape."""
    texts = []
    for j, part in enumerate(parts):
        where = f"{at}[{j}]"
        if not isinstance(part, dict):
            raise expect(part, "an object", where)
        kind = part.get("type")
        if not isinstance(kind, str):
            raise expect(kind, "a string", f"{where}.type")
        if kind in TEXT_PARTS:
            text = part.get("text")
            if not isinstance(text, str):
                raise expect(text, "a string", f"{where}.text")
            texts.append(text)
    return "\n".join(texts)


def parts_spell(parts: list[Any], text: str) -> bool:
    """Whether the text parts of ``parts`` (well formed) join to ``text``: the parts are then
    the content itself, not text beside it."""
    try:
        return join_text_parts(parts, "content") == text
    except RecordRejected:
        return False


def parts_for(parts: list[Any], text: str) -> list[Any] | None:
    """A turn's content parts as written for its text: the parts as read when they spell it;
    after a later step changed the text, one text part of it and then the other parts; None
    when there are no others (the text alone is the content)."""
    if parts_spell(parts, text):
        return parts
    others = non_text_parts(parts)
    return [{"type": "text", "text": text}, *others] if others else None
