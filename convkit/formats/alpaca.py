"""Alpaca and its kin: ``{"instruction", "input"?, "output"}``.

Also Code-Alpaca, GPT4-Alpaca, Self-Instruct and Evol-Instruct 70k (``{instruction, output}``),
and LLaMA-Factory's extension with ``"system"`` and ``"history": [[prompt, response], ...]``.

Reader option ``prompt_template`` says how instruction and input become the user turn; the
name is recorded in ``meta["convkit"]["prompt_template"]``:

``default``
    ``instruction``, or ``instruction + "\\n\\n" + input`` when ``input`` is non-empty after
    stripping.
``fastchat``
    FastChat's ``convert_alpaca.py``: ``instruction + "\\nInput:\\n" + input`` when the stripped
    input is longer than one character (its ``> 1`` test: a one-character input is dropped).
``llama-factory``
    LLaMA-Factory's converter: the non-empty of instruction and input joined by ``"\\n"``.
``stanford``
    The Stanford Alpaca training prompt, preamble and ``### Response:`` header included, as the
    whole user turn (``prompt_input`` when ``input`` is not ``""``, else ``prompt_no_input``).

The writer makes one record per single-exchange conversation (optional system turns, one user
turn, one assistant turn); anything longer is rejected with ``not_single_exchange`` unless the
writer option ``history`` is set, which writes the earlier exchanges as LLaMA-Factory
``history`` pairs. The user turn goes to ``instruction`` whole (``input`` is ``""``): how a
reader joined the two cannot be undone reliably, except where it can be checked: a user turn
read by this reader (or dolly's) from an instruction and an input, and still what the recorded
prompt template makes of them, is written back as that instruction and that input. A field
named like the structure (a ``"system"`` or ``"history"`` field of another format's record) is
written as ``"convkit:system"`` and read back under its own name (:mod:`convkit.formats._keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..model import ASSISTANT, SYSTEM, USER, Conversation, Source, Turn, media_parts
from ._common import expect, opt_str, req_str, with_provenance
from ._keys import own_fields, put_fields
from .base import PROVENANCE_KEY, Format, Option, RecordRejected, register
from .sharegpt import record_id, require_object

#: The reason of a conversation with images (or other non-text parts) a writer cannot hold.
NON_TEXT = "non_text_content"


def _parts_summary(parts: list[Any]) -> str:
    kinds = sorted({str(p.get("type")) if isinstance(p, dict) else "?" for p in parts})
    return f"{len(parts)} non-text part{'s' if len(parts) > 1 else ''} ({', '.join(kinds)})"

_STANFORD_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
_STANFORD_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def _default(instruction: str, inp: str) -> str:
    # "not x or x.isspace()" is "not x.strip()" without copying x.
    if not inp or inp.isspace():
        return instruction
    if not instruction or instruction.isspace():
        return inp
    return instruction + "\n\n" + inp


def _fastchat(instruction: str, inp: str) -> str:
    if len(inp.strip()) > 1:
        return instruction + "\nInput:\n" + inp
    return instruction


def _llama_factory(instruction: str, inp: str) -> str:
    return "\n".join(p for p in (instruction, inp) if p)


def _stanford(instruction: str, inp: str) -> str:
    if inp != "":
        return _STANFORD_INPUT.format(instruction=instruction, input=inp)
    return _STANFORD_NO_INPUT.format(instruction=instruction)


#: Prompt templates by name: (instruction, input) -> user turn.
PROMPT_TEMPLATES: dict[str, Callable[[str, str], str]] = {
    "default": _default,
    "fastchat": _fastchat,
    "llama-factory": _llama_factory,
    "stanford": _stanford,
}

PROMPT_TEMPLATE_OPTION = Option(
    "prompt_template",
    str,
    "default",
    "how instruction and input make the user turn: " + ", ".join(PROMPT_TEMPLATES),
    choices=tuple(PROMPT_TEMPLATES),
)


@register
class Alpaca(Format):
    name = "alpaca"
    reasons: ClassVar[dict[str, str]] = {
        NON_TEXT: "a turn holds an image or other non-text part, which alpaca cannot hold "
        "(alpaca writer)",
        "not_single_exchange": "the alpaca writer holds one exchange (after a system prompt); "
        "longer ones need --history",
    }
    aliases = ("code-alpaca", "gpt4-alpaca", "self-instruct", "evol-instruct")
    description = '{"instruction", "input"?, "output"}; also "system" and "history" pairs'
    recognises = 'string "instruction" and "output"'
    detect_priority = 60
    claims = ("instruction", "output")
    options = (
        PROMPT_TEMPLATE_OPTION,
        Option(
            "history",
            bool,
            False,
            "write earlier exchanges as LLaMA-Factory history pairs instead of rejecting them",
            side="write",
        ),
    )

    #: Field names: the dolly reader maps its own onto the same rules.
    instruction_key = "instruction"
    input_key = "input"
    output_key = "output"

    def recognise(self, record: Any) -> str | None:
        if (
            isinstance(record, dict)
            and isinstance(record.get(self.instruction_key), str)
            and isinstance(record.get(self.output_key), str)
            and "instances" not in record
        ):
            return self.recognises
        return None

    def read_one(self, record: Any, source: Source) -> Conversation:
        # The common record (an object of strings) takes the fast checks; anything else goes
        # through the helpers, which word the error.
        if type(record) is not dict:
            record = require_object(record)
        rid = record_id(record, source)
        get = record.get
        instruction = get(self.instruction_key)
        if type(instruction) is not str:
            instruction = req_str(record, self.instruction_key)
        inp = get(self.input_key)
        if type(inp) is not str:
            inp = opt_str(record, self.input_key)
        output = get(self.output_key)
        if type(output) is not str:
            output = req_str(record, self.output_key)
        turns: list[Turn] = []
        system = get("system")
        if system is not None and type(system) is not str:
            system = opt_str(record, "system")
        if system:
            turns.append(Turn(SYSTEM, system))
        history = get("history")
        if history is not None:
            turns.extend(_history(history))
        template = self.opt["prompt_template"]
        turns.append(Turn(USER, PROMPT_TEMPLATES[template](instruction, inp)))
        turns.append(Turn(ASSISTANT, output))
        used = self._used
        if used is None:
            used = self._used = frozenset(
                ("id", self.instruction_key, self.input_key, self.output_key, "system", "history")
            )
        # Records of 800 bytes: the call is worth saving when there is nothing to take
        # (callgrind: a percent of an alpaca conversion).
        meta = {} if record.keys() <= used else own_fields(record, used, used)
        if PROVENANCE_KEY in meta:
            meta = with_provenance(meta, self.name, prompt_template=template)
        else:
            meta[PROVENANCE_KEY] = {"reader": self.name, "prompt_template": template}
        return Conversation(rid, turns, meta, source, record)

    _used: frozenset[str] | None = None  # the fields read (the rest go to the metadata)

    def write(self, conv: Conversation) -> dict[str, Any]:
        system = [t.content for t in conv.system_turns()]
        rest = conv.turns[len(system) :]
        pairs = len(rest) // 2
        if (
            pairs == 0
            or [t.role for t in rest] != [USER, ASSISTANT] * pairs
            or (pairs > 1 and not self.opt["history"])
        ):
            raise RecordRejected(
                "not_single_exchange",
                "alpaca holds one user turn and one assistant turn (after any system turns); "
                f"this conversation has {_roles_summary(conv)}",
            )
        for i, t in enumerate(conv.turns):
            if media_parts(t):
                raise RecordRejected(
                    NON_TEXT,
                    f"alpaca holds text only; turn {i} has {_parts_summary(media_parts(t))}",
                )
        out: dict[str, Any] = {"id": conv.written_id()}
        if system:
            out["system"] = "\n\n".join(system)
        if pairs > 1:
            out["history"] = [
                [rest[i].content, rest[i + 1].content] for i in range(0, len(rest) - 2, 2)
            ]
        out["instruction"], out["input"] = _instruction_and_input(conv, rest[-2].content)
        out["output"] = rest[-1].content
        # A field named like this format's structure ("system", "history" from another format)
        # would be read back as a system turn or earlier exchanges: escaped.
        put_fields(out, conv.meta, _STRUCTURE)
        return out


#: What the alpaca reader takes as the conversation, whether or not this record has it.
_STRUCTURE = frozenset(("id", "instruction", "input", "output", "system", "history"))


def _instruction_and_input(conv: Conversation, user: str) -> tuple[str, str]:
    """The instruction and input the user turn ``user`` was read from, when that can be
    checked (see the module's docstring); else ``(user, "")``."""
    made = conv.meta.get(PROVENANCE_KEY)
    raw = conv.raw
    if not isinstance(made, dict) or not isinstance(raw, dict):
        return user, ""
    reader, template = made.get("reader"), made.get("prompt_template")
    if reader not in ("alpaca", "dolly") or template not in PROMPT_TEMPLATES:
        return user, ""
    from . import get_format

    fmt = get_format(reader)
    instruction, inp = raw.get(fmt.instruction_key), raw.get(fmt.input_key, "")
    if (
        isinstance(instruction, str)
        and isinstance(inp, str)
        and PROMPT_TEMPLATES[template](instruction, inp) == user
    ):
        return instruction, inp
    return user, ""


def _history(history: Any) -> list[Turn]:
    """LLaMA-Factory's ``history``: earlier ``[prompt, response]`` pairs, oldest first."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise expect(history, "a list", "history")
    turns = []
    for i, pair in enumerate(history):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(p, str) for p in pair)
        ):
            raise RecordRejected(
                "invalid_record",
                f"expected history[{i}] to be a [prompt, response] pair of strings",
                f"history[{i}]",
            )
        turns.append(Turn(USER, pair[0]))
        turns.append(Turn(ASSISTANT, pair[1]))
    return turns


def _roles_summary(conv: Conversation) -> str:
    if not conv.turns:
        return "no turns"
    return "roles " + ", ".join(conv.roles())
