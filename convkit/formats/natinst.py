"""Natural Instructions v1 task files: one conversation per instance.

A v1 task file holds ``Title``, ``Definition``, ``Prompt``, ``Things to Avoid``,
``Emphasis & Caution`` (``"-"`` when empty), ``Examples: {"Positive Examples": [...],
"Negative Examples": [...]}`` and ``Instances: [{input, output: [str, ...]}]``.

The instruction is made of the fields named by the option ``instruction_fields`` (default
``Definition``; for example ``Definition,Prompt``), each non-empty one written as in v1's own
encoder, ``"<Field>: <text>"``, one per line; with the single default field the text alone is
used. Everything else (zero- and few-shot prompts, seeded choice, ids, metadata) is as for
Super-NaturalInstructions (:mod:`convkit.formats.superni`); the title goes to ``meta["title"]``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._common import expect, req_obj
from .base import Option, register
from .superni import FEWSHOT_OPTIONS, TaskFileFormat

INSTRUCTION_FIELDS = ("Definition", "Prompt", "Things to Avoid", "Emphasis & Caution")


@register
class NaturalInstructionsV1(TaskFileFormat):
    name = "natural-instructions"
    aliases = ("natural-instructions-v1", "ni-v1")
    description = "Natural Instructions v1 task file; one conversation per instance"
    recognises = '"Definition", "Examples" (an object) and "Instances" (v1 task file)'
    options = (
        *FEWSHOT_OPTIONS,
        Option(
            "instruction_fields",
            str,
            "Definition",
            "comma-separated fields making the instruction: " + ", ".join(INSTRUCTION_FIELDS),
        ),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        fields = tuple(f.strip() for f in self.opt["instruction_fields"].split(","))
        for f in fields:
            if f not in INSTRUCTION_FIELDS:
                raise ConfigError(
                    f"unknown instruction field {f!r} for format {self.name!r}; "
                    f"known: {', '.join(INSTRUCTION_FIELDS)}"
                )
        self._fields = fields

    def recognise(self, record: Any) -> str | None:
        if (
            isinstance(record, dict)
            and "Definition" in record
            and isinstance(record.get("Instances"), list)
            and isinstance(record.get("Examples"), dict)
        ):
            return self.recognises
        return None

    def definition(self, record: dict[str, Any]) -> str:
        parts = []
        for f in self._fields:
            value = record.get(f)
            if value is None:
                continue
            if not isinstance(value, str):
                raise expect(value, "a string", f)
            if value.strip() in ("", "-"):
                continue
            parts.append((f, value.strip()))
        if self._fields == ("Definition",):
            return parts[0][1] if parts else ""
        return "\n".join(f"{f}: {text}" for f, text in parts)

    def positive_examples(self, record: dict[str, Any]) -> tuple[list[Any], str]:
        examples = req_obj(record.get("Examples"), "Examples")
        value = examples.get("Positive Examples", [])
        if not isinstance(value, list):
            raise expect(value, "a list", "Examples.Positive Examples")
        return value, "Examples.Positive Examples"

    def task_meta(self, record: dict[str, Any]) -> dict[str, Any]:
        title = record.get("Title")
        return {"title": title} if isinstance(title, str) and title else {}
