"""Flan 2021/2022, P3 / T0 and other ``{"inputs", "targets"}`` collections.

User = ``inputs``, assistant = ``targets``. P3 stores token ids in ``inputs``/``targets`` and the
text in ``inputs_pretokenized``/``targets_pretokenized``: the text fields win when present, and
id lists are not copied to the metadata. The task name (``task``, ``task_name``, ``_task_name``)
goes to ``meta["task"]`` and the template type (``template_type``, ``_template_type``) to
``meta["template_type"]``; other fields are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import expect, missing, with_provenance
from .base import Format, register
from .sharegpt import record_id, require_object

_TEXT_KEYS = ("inputs_pretokenized", "targets_pretokenized")
_TASK_KEYS = ("task", "task_name", "_task_name")
_TEMPLATE_KEYS = ("template_type", "_template_type")


def _text(record: dict[str, Any], key: str) -> str:
    """``<key>_pretokenized`` if it is there (and not null), else ``<key>`` (which must then be
    a string)."""
    pre = f"{key}_pretokenized"
    if record.get(pre) is not None:
        value = record[pre]
        if not isinstance(value, str):
            raise expect(value, "a string", pre)
        return value
    if key not in record:
        raise missing(key)
    value = record[key]
    if not isinstance(value, str):
        raise expect(value, "a string", key)
    return value


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if record.get(k) not in (None, ""):
            return record[k]
    return None


@register
class Flan(Format):
    name = "flan"
    aliases = ("p3", "t0", "flan-v2")
    description = '{"inputs", "targets"} (or *_pretokenized); task and template type to metadata'
    recognises = '"inputs" and "targets" (or their *_pretokenized) as strings'
    detect_priority = 70
    claims = ("inputs", "targets")

    def recognise(self, record: Any) -> str | None:
        if not isinstance(record, dict):
            return None
        for a, b in (("inputs", "targets"), _TEXT_KEYS):
            if isinstance(record.get(a), str) and isinstance(record.get(b), str):
                return self.recognises
        return None

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        record = require_object(record)
        rid = record_id(record, source)
        turns = [Turn(USER, _text(record, "inputs")), Turn(ASSISTANT, _text(record, "targets"))]
        meta: dict[str, Any] = {}
        task = _first(record, _TASK_KEYS)
        if task is not None:
            meta["task"] = task
        template = _first(record, _TEMPLATE_KEYS)
        if template is not None:
            meta["template_type"] = template
        used = {"id", "inputs", "targets", *_TEXT_KEYS, *_TASK_KEYS, *_TEMPLATE_KEYS}
        for k, v in record.items():
            if k not in used:
                meta[k] = v
        yield Conversation(rid, turns, with_provenance(meta, self.name), source, record)
