"""Unnatural Instructions: ``{"instruction", "instances": [...], "reformulations"?: [...]}``.

One conversation per instance. The user turn is the instance's ``instruction_with_input`` when
it has one, else ``instruction + "\\n\\n" + input`` (the instruction alone when the input is
empty); its ``constraints`` follow after a blank line unless empty or "none" (any case, a final
period allowed). The assistant turn is the instance's ``output``.

With the option ``with_reformulations`` each of the record's ``reformulations`` (paraphrased
instructions, each with ``instruction_with_input``/``input``/``output``) gives a conversation
too, under the same rules; they carry no constraints of their own.

Ids: ``{record id}/instances/{i}`` and ``{record id}/reformulations/{j}``, where the record id
is its ``id`` or ``<file>#<index>``. A bad instance is rejected alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import expect, other_fields, req_list, req_str, with_provenance
from .base import NO_CONVERSATION, Format, Option, RecordRejected, Rejection, register
from .sharegpt import record_id, require_object

# "None", "none.", " NONE " all mean no constraint; anything else is a constraint to keep.
_NO_CONSTRAINT = re.compile(r"\s*(none\.?)?\s*", re.IGNORECASE)


@register
class Unnatural(Format):
    name = "unnatural"
    aliases = ("unnatural-instructions",)
    description = '{"instruction", "instances": [{input, constraints, output}], "reformulations"?}'
    recognises = 'string "instruction" and "instances" as a list'
    claims = ("instruction", "instances")
    detect_priority = 20
    options = (
        Option(
            "with_reformulations",
            bool,
            False,
            "also make a conversation of each paraphrased instruction",
        ),
    )

    def recognise(self, record: Any) -> str | None:
        if (
            isinstance(record, dict)
            and isinstance(record.get("instruction"), str)
            and isinstance(record.get("instances"), list)
        ):
            return self.recognises
        return None

    def read(self, record: Any, source: Source) -> Iterator[Conversation | Rejection]:
        record = require_object(record)
        rid = record_id(record, source)
        instruction = req_str(record, "instruction")
        parts: list[tuple[str, list[Any]]] = [("instances", req_list(record, "instances"))]
        if self.opt["with_reformulations"] and record.get("reformulations") is not None:
            parts.append(("reformulations", req_list(record, "reformulations")))
        if not any(items for _, items in parts):
            raise RecordRejected(NO_CONVERSATION, '"instances" is an empty list', "instances")
        base_meta = other_fields(record, ("id", "instruction", "instances", "reformulations"))
        for key, items in parts:
            for i, item in enumerate(items):
                cid = f"{rid}/{key}/{i}"
                try:
                    user, answer = _exchange(item, instruction, f"{key}[{i}]")
                except RecordRejected as e:
                    yield Rejection.of(e, source, item, cid)
                    continue
                meta = with_provenance(dict(base_meta), self.name, part=key)
                yield Conversation(
                    cid, [Turn(USER, user), Turn(ASSISTANT, answer)], meta, source, item
                )


def _exchange(item: Any, instruction: str, at: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise expect(item, "an object", at)
    own = item.get("instruction", instruction)
    if not isinstance(own, str):
        raise expect(own, "a string", f"{at}.instruction")
    with_input = item.get("instruction_with_input")
    if with_input is not None and not isinstance(with_input, str):
        raise expect(with_input, "a string", f"{at}.instruction_with_input")
    inp = item.get("input")
    if inp is not None and not isinstance(inp, str):
        raise expect(inp, "a string", f"{at}.input")
    if with_input:
        user = with_input
    elif inp and inp.strip():
        user = f"{own}\n\n{inp}"
    else:
        user = own
    constraints = item.get("constraints")
    if constraints is not None and not isinstance(constraints, str):
        raise expect(constraints, "a string", f"{at}.constraints")
    if constraints and not _NO_CONSTRAINT.fullmatch(constraints):
        user = f"{user}\n\n{constraints}"
    return user, req_str(item, "output", at)
