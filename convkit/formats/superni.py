"""Super-NaturalInstructions task files: one task object, one conversation per instance.

A task file holds ``Definition`` (a string, or a list of strings joined by a blank line),
``Positive Examples`` (``[{input, output, explanation}]``) and ``Instances``
(``[{id?, input, output: [str, ...]}]``). The assistant turn is the instance's first output.

Zero-shot (the default) the user turn is ``definition + "\\n\\n" + input``. With the option
``fewshot=K`` (K > 0), K positive examples are chosen for each instance by a random generator
seeded with ``(seed, task, instance index)``, so a choice never depends on reading order, and
the user turn is::

    {definition}

    Example 1:
    Input: {example input}
    Output: {example output}

    ...

    Now complete the following example:
    Input: {instance input}
    Output:

A task with fewer than K positive examples uses all it has. The task name is the file's name
without its extension (``task1146_country_capital``; a later record of the same file gets
``#<index>``) and goes to ``meta["task"]``, the categories to ``meta["categories"]``; the rule
to ``meta["convkit"]`` (``prompt_template`` ``zero-shot`` or ``few-shot``, ``fewshot_examples``:
the indices chosen). Conversation ids are ``{task}/{instance id}`` (``{task}/{index}`` when
instances have no id). A bad instance is rejected alone (``invalid_record``, ``no_output``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any, ClassVar

from ..model import ASSISTANT, USER, Conversation, Source, Turn
from ._common import expect, req_list, with_provenance
from .base import NO_CONVERSATION, Format, Option, RecordRejected, Rejection, register
from .sharegpt import require_object

FEWSHOT_OPTIONS = (
    Option("fewshot", int, 0, "positive examples added to each prompt (seeded choice)", minimum=0),
    Option("seed", int, 0, "seed of the few-shot example choice"),
)


def task_name(record: dict[str, Any], source: Source) -> str:
    """The task's name: a ``Name``/``name``/``task_name`` field, else the file's base name."""
    for key in ("task_name", "Name", "name"):
        if isinstance(record.get(key), str) and record[key]:
            return record[key]
    base = os.path.basename(source.file)
    for ext in (".gz", ".zst", ".bz2", ".xz"):
        base = base.removesuffix(ext)
    base = os.path.splitext(base)[0] or base
    return base if source.index == 0 else f"{base}#{source.index}"


def first_output(value: Any, at: str) -> str:
    """An output as Super-NI stores it: a list whose first string is the reference, or a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if not value:
            raise RecordRejected("no_output", f"{at} is an empty list", at)
        if not isinstance(value[0], str):
            raise expect(value[0], "a string", f"{at}[0]")
        return value[0]
    raise expect(value, "a list of strings", at)


class TaskFileFormat(Format):
    reasons: ClassVar[dict[str, str]] = {
        "no_output": "a task instance has an empty list of outputs",
    }
    """What Super-NI and Natural Instructions v1 task files share; subclasses find the parts."""

    options = FEWSHOT_OPTIONS
    detect_priority = 10

    def definition(self, record: dict[str, Any]) -> str:
        raise NotImplementedError

    def positive_examples(self, record: dict[str, Any]) -> tuple[list[Any], str]:
        """The positive examples and the path they are at (for messages)."""
        raise NotImplementedError

    def task_meta(self, record: dict[str, Any]) -> dict[str, Any]:
        return {}

    def read(self, record: Any, source: Source) -> Iterator[Conversation | Rejection]:
        record = require_object(record)
        task = task_name(record, source)
        definition = self.definition(record)
        instances = req_list(record, "Instances")
        if not instances:
            raise RecordRejected(NO_CONVERSATION, '"Instances" is an empty list', "Instances")
        k = self.opt["fewshot"]
        examples: list[tuple[str, str]] = []
        if k:
            raw_examples, at = self.positive_examples(record)
            for i, ex in enumerate(raw_examples):
                path = f"{at}[{i}]"
                if not isinstance(ex, dict):
                    raise expect(ex, "an object", path)
                if not isinstance(ex.get("input"), str):
                    raise expect(ex.get("input"), "a string", f"{path}.input")
                examples.append((ex["input"], first_output(ex.get("output"), f"{path}.output")))
        base_meta = {"task": task, **self.task_meta(record)}
        for i, inst in enumerate(instances):
            at = f"Instances[{i}]"
            iid = inst.get("id") if isinstance(inst, dict) else None
            cid = f"{task}/{iid}" if isinstance(iid, (str, int)) and iid != "" else f"{task}/{i}"
            try:
                if not isinstance(inst, dict):
                    raise expect(inst, "an object", at)
                text = inst.get("input")
                if not isinstance(text, str):
                    raise expect(text, "a string", f"{at}.input")
                answer = first_output(inst.get("output"), f"{at}.output")
            except RecordRejected as e:
                yield Rejection.of(e, source, inst, cid)
                continue
            chosen: list[int] = []
            if k and examples:
                rng = random.Random(f"{self.opt['seed']}/{task}/{i}")
                chosen = sorted(rng.sample(range(len(examples)), min(k, len(examples))))
            user = _prompt(definition, text, [examples[j] for j in chosen] if k else None)
            meta = with_provenance(
                dict(base_meta),
                self.name,
                prompt_template="few-shot" if k else "zero-shot",
                fewshot_examples=chosen if k else None,
            )
            yield Conversation(cid, [Turn(USER, user), Turn(ASSISTANT, answer)], meta, source, inst)


def _prompt(definition: str, text: str, examples: list[tuple[str, str]] | None) -> str:
    head = definition.strip()
    if examples is None:  # zero-shot
        return f"{head}\n\n{text}" if head else text
    parts = [head] if head else []
    for n, (ex_in, ex_out) in enumerate(examples, 1):
        parts.append(f"Example {n}:\nInput: {ex_in}\nOutput: {ex_out}")
    parts.append(f"Now complete the following example:\nInput: {text}\nOutput:")
    return "\n\n".join(parts)


@register
class SuperNI(TaskFileFormat):
    name = "super-ni"
    aliases = ("super-natural-instructions", "sni")
    description = "Super-NaturalInstructions task file; one conversation per instance"
    recognises = '"Definition" and "Instances" (Super-NaturalInstructions task file)'
    claims = ("Definition", "Instances")

    def recognise(self, record: Any) -> str | None:
        if (
            isinstance(record, dict)
            and "Definition" in record
            and isinstance(record.get("Instances"), list)
            and not isinstance(record.get("Examples"), dict)
        ):
            return self.recognises
        return None

    def definition(self, record: dict[str, Any]) -> str:
        value = record.get("Definition")
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n\n".join(value)
        if "Definition" not in record:
            raise RecordRejected("invalid_record", 'missing "Definition"', "Definition")
        raise expect(value, "a string or a list of strings", "Definition")

    def positive_examples(self, record: dict[str, Any]) -> tuple[list[Any], str]:
        value = record.get("Positive Examples", [])
        if not isinstance(value, list):
            raise expect(value, "a list", "Positive Examples")
        return value, "Positive Examples"

    def task_meta(self, record: dict[str, Any]) -> dict[str, Any]:
        cats = record.get("Categories")
        return {"categories": cats} if cats else {}
