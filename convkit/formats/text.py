"""Rendered text: ``{"text": "..."}`` read back into turns, and conversations written through a
chat template.

Reading, the ``style`` option names the rendered form (``auto``, the default, recognises it by
its markers: of the forms below whose markers the text holds, the one whose first marker comes
first, since the frame is outermost):

``chatml``
    ``<|im_start|>role\\n…<|im_end|>``; content kept exactly; an unterminated last message
    (a generation prompt followed by the answer) is taken as it is.
``llama-3``
    ``<|start_header_id|>role<|end_header_id|>\\n\\n…<|eot_id|>`` (``ipython`` reads as ``tool``).
``llama-2``
    ``<s>[INST] <<SYS>>\\n…\\n<</SYS>>\\n\\n… [/INST] … </s>``.
``human-assistant``
    ``### Human: … ### Assistant: …`` (Guanaco and the like).
``alpaca``
    ``### Instruction:`` / ``### Input:`` / ``### Response:`` sections; instruction and input are
    joined by a blank line.
``vicuna``
    ``… USER: … ASSISTANT: …</s>``.

Text before the first marker becomes a system turn (the Vicuna and Alpaca preambles); content is
stripped except in ChatML, whose delimiters are exact. The style found is recorded in
``meta["convkit"]["style"]``.

Writing, each conversation becomes ``{"id", "text", ...meta}`` (a field of its own named
``"text"`` as ``"convkit:text"``, see :mod:`convkit.formats._keys`) with ``text`` rendered through
the chat template named by the option ``template`` (a built-in, a ``.jinja`` file, a
``tokenizer_config.json`` or a model directory; see :mod:`convkit.templates`), rendered in a
sandbox. ``meta["convkit"]`` records the template's name (and the sha256 of a template file).
A conversation the template refuses is rejected with reason ``template_error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from ..model import ASSISTANT, SYSTEM, TOOL, USER, Conversation, Source, Turn
from ._common import req_str, with_provenance
from ._keys import own_fields, put_fields
from .base import PROVENANCE_KEY, Format, Option, RecordRejected, register
from .sharegpt import record_id, require_object

_ROLE_NAMES = {
    "system": SYSTEM,
    "user": USER,
    "assistant": ASSISTANT,
    "tool": TOOL,
    "ipython": TOOL,
    "function": TOOL,
    "developer": SYSTEM,
}

# --------------------------------------------------------------------------- parsers
# Each parser takes the text and returns (role, content) pairs, or raises RecordRejected.

_CHATML = re.compile(r"<\|im_start\|>([^\n]*)\n(.*?)<\|im_end\|>", re.DOTALL)
_CHATML_OPEN = re.compile(r"<\|im_start\|>([^\n]*)\n(.*)\Z", re.DOTALL)
_LLAMA3 = re.compile(
    r"<\|start_header_id\|>(.*?)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|(?=<\|start_header_id\|>)|\Z)",
    re.DOTALL,
)
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.DOTALL)
_SYS = re.compile(r"\A\s*<<SYS>>\n?(.*?)\n?<</SYS>>\s*", re.DOTALL)
# "### Human:" / "### Assistant:" headers; the space after "###" and before ":" may vary.
_HUMAN_ASSISTANT = re.compile(r"###\s*(Human|Assistant)\s*:")
_ALPACA = re.compile(r"###\s*(Instruction|Input|Response)\s*:")
# Vicuna's "USER:" / "ASSISTANT:" only count at the start or after white space or "</s>".
_VICUNA = re.compile(r"(?:(?<=\s)|(?<=</s>)|\A)(USER|ASSISTANT):")


def _role(name: str, style: str) -> str:
    role = _ROLE_NAMES.get(name.strip().lower())
    if role is None:
        raise RecordRejected(
            "unknown_role", f"unknown role {name.strip()!r} in {style} text", "text"
        )
    return role


def _stray(text: str, style: str) -> None:
    if text.strip():
        shown = text.strip()[:40]
        raise RecordRejected(
            "unparsed_text", f"text outside the {style} markers: {shown!r}", "text"
        )


def _parse_chatml(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    for m in _CHATML.finditer(text):
        _stray(text[pos : m.start()], "chatml")
        out.append((_role(m.group(1), "chatml"), m.group(2)))
        pos = m.end()
    rest = text[pos:]
    m = _CHATML_OPEN.search(rest)
    if m:
        _stray(rest[: m.start()], "chatml")
        if m.group(2).strip():
            out.append((_role(m.group(1), "chatml"), m.group(2)))
    else:
        _stray(rest, "chatml")
    return out


def _parse_llama3(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    for m in _LLAMA3.finditer(text):
        _stray(text[pos : m.start()].replace("<|begin_of_text|>", ""), "llama-3")
        content = m.group(2).strip()
        if content or m.group(0).endswith("<|eot_id|>"):
            out.append((_role(m.group(1), "llama-3"), content))
        pos = m.end()
    _stray(text[pos:].replace("<|end_of_text|>", ""), "llama-3")
    return out


def _unframed(between: str) -> str:
    """An answer between ``[/INST]`` and the next ``[INST]`` (or the end) without the frame:
    the answer's ``</s>`` and the next exchange's ``<s>``. Those inside the answer stay."""
    between = between.strip().removesuffix("<s>").rstrip()
    return between.removesuffix("</s>").strip()


def _parse_llama2(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _INST.finditer(text):
        between = text[pos : m.start()]
        if out:
            if _unframed(between):
                out.append((ASSISTANT, _unframed(between)))
        else:
            _stray(between.strip().removeprefix("<s>"), "llama-2")
        user = m.group(1)
        if not out:
            sys = _SYS.match(user)
            if sys:
                out.append((SYSTEM, sys.group(1).strip()))
                user = user[sys.end() :]
        out.append((USER, user.strip()))
        pos = m.end()
    tail = _unframed(text[pos:])
    if tail:
        out.append((ASSISTANT, tail))
    return out


def _split_headers(
    text: str, pattern: re.Pattern[str], style: str
) -> tuple[str, list[tuple[str, str]]]:
    """The preamble and the (header, body) sections of a text with ``### Header:`` markers."""
    marks = list(pattern.finditer(text))
    preamble = text[: marks[0].start()] if marks else text
    sections = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        sections.append((m.group(1), text[m.end() : end]))
    return preamble, sections


def _clean(body: str) -> str:
    body = body.strip()
    body = body.removesuffix("</s>").removesuffix("<|endoftext|>")
    return body.strip()


def _parse_human_assistant(text: str) -> list[tuple[str, str]]:
    preamble, sections = _split_headers(text, _HUMAN_ASSISTANT, "human-assistant")
    out = [(SYSTEM, _clean(preamble))] if _clean(preamble) else []
    for header, body in sections:
        out.append((USER if header == "Human" else ASSISTANT, _clean(body)))
    if out and out[-1] == (ASSISTANT, ""):
        out.pop()  # a trailing "### Assistant:" generation prompt
    return out


def _parse_alpaca(text: str) -> list[tuple[str, str]]:
    preamble, sections = _split_headers(text, _ALPACA, "alpaca")
    out = [(SYSTEM, _clean(preamble))] if _clean(preamble) else []
    pending: list[str] | None = None  # instruction (and input) waiting for their response
    for header, body in sections:
        if header == "Instruction":
            if pending is not None:
                out.append((USER, "\n\n".join(pending)))
            pending = [_clean(body)]
        elif header == "Input":
            if pending is None:
                raise RecordRejected(
                    "unparsed_text", '"### Input:" before any "### Instruction:"', "text"
                )
            if _clean(body):
                pending.append(_clean(body))
        else:
            if pending is not None:
                out.append((USER, "\n\n".join(pending)))
                pending = None
            if _clean(body):
                out.append((ASSISTANT, _clean(body)))
    if pending is not None:
        out.append((USER, "\n\n".join(pending)))
    return out


def _parse_vicuna(text: str) -> list[tuple[str, str]]:
    preamble, sections = _split_headers(text, _VICUNA, "vicuna")
    out = [(SYSTEM, _clean(preamble))] if _clean(preamble) else []
    for header, body in sections:
        out.append((USER if header == "USER" else ASSISTANT, _clean(body)))
    if out and out[-1] == (ASSISTANT, ""):
        out.pop()  # a trailing "ASSISTANT:" generation prompt
    return out


#: Styles: (name, the marker that opens its first turn, the rest of its test, parser).
STYLES: tuple[
    tuple[
        str,
        re.Pattern[str],
        Callable[[str], bool],
        Callable[[str], list[tuple[str, str]]],
    ],
    ...,
] = (
    ("chatml", re.compile(r"<\|im_start\|>"), lambda t: True, _parse_chatml),
    ("llama-3", re.compile(r"<\|start_header_id\|>"), lambda t: True, _parse_llama3),
    ("llama-2", re.compile(r"\[INST\]"), lambda t: "[/INST]" in t, _parse_llama2),
    ("human-assistant", re.compile(r"###\s*Human\s*:"), lambda t: True, _parse_human_assistant),
    (
        "alpaca",
        re.compile(r"###\s*Instruction\s*:"),
        lambda t: bool(re.search(r"###\s*Response\s*:", t)),
        _parse_alpaca,
    ),
    ("vicuna", _VICUNA, lambda t: "ASSISTANT:" in t and "USER:" in t, _parse_vicuna),
)
_PARSERS = {name: parse for name, _, _, parse in STYLES}
# The record's structure: fields of its own so named are written escaped (see _keys).
_RECORD = frozenset(("id", "text"))


def detect_style(text: str) -> str | None:
    """The rendered form of ``text`` (see the module doc), or None: of the forms whose markers
    it holds, the one whose marker comes first. The frame is outermost, so a message that
    mentions another form's markers ("what does [INST] mean?") does not decide the form."""
    found: tuple[int, str] | None = None
    for name, opener, rest, _ in STYLES:
        m = opener.search(text) if found is None else opener.search(text, 0, found[0])
        if m is not None and rest(text):
            found = (m.start(), name)
    return None if found is None else found[1]


@register
class Text(Format):
    name = "text"
    reasons: ClassVar[dict[str, str]] = {
        "no_turns": "the record's text holds no turn (no marker, or every round empty)",
        "unknown_text_style": '"text" is in no rendered form convkit knows',
        "unparsed_text": '"text" holds text outside the markers of its rendered form',
        "template_error": "the chat template refused the conversation, or rendered nothing but "
        "white space for it (text writer), or a segment --count-template cannot render",
    }
    aliases = ("transcript",)
    description = (
        '{"text"}: read back from ChatML, Llama 2/3, "### Human:", Alpaca or Vicuna text; '
        "written through a chat template"
    )
    recognises = '"text" in a known rendered form (ChatML, [INST], ### Human:, ...)'
    detect_priority = 90
    options = (
        Option(
            "style",
            str,
            "auto",
            "rendered form of the text: auto, " + ", ".join(n for n, *_ in STYLES),
            choices=("auto", *(n for n, *_ in STYLES)),
        ),
        Option(
            "template",
            str,
            "chatml",
            "chat template: a built-in name, a .jinja file, a tokenizer_config.json or a model "
            "directory",
            side="write",
        ),
        Option(
            "template_variant",
            str,
            None,
            "which named template of a tokenizer_config.json (default: 'default')",
            side="write",
        ),
        Option(
            "bos_token", str, None, "BOS text the template writes (default: its own)", side="write"
        ),
        Option(
            "eos_token", str, None, "EOS text the template writes (default: its own)", side="write"
        ),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._template: Any = None
        # Asked for a template: load it now, so that a bad one fails before any record.
        if any(k in options for k in ("template", "template_variant", "bos_token", "eos_token")):
            self.template  # noqa: B018

    @property
    def template(self) -> Any:
        """The :class:`convkit.templates.ChatTemplate` the writer renders with (loaded once)."""
        if self._template is None:
            from ..templates import load_template

            self._template = load_template(
                self.opt["template"],
                variant=self.opt["template_variant"],
                bos_token=self.opt["bos_token"],
                eos_token=self.opt["eos_token"],
            )
        return self._template

    def recognise(self, record: Any) -> str | None:
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            style = detect_style(record["text"])
            if style is not None:
                return f'"text" rendered as {style}'
        return None

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        record = require_object(record)
        rid = record_id(record, source)
        text = req_str(record, "text")
        style = self.opt["style"]
        if style == "auto":
            style = detect_style(text)
            if style is None:
                raise RecordRejected(
                    "unknown_text_style",
                    '"text" is in no known rendered form (ChatML, Llama 2/3, ### Human:, Alpaca, Vicuna)',
                    "text",
                )
        pairs = _PARSERS[style](text)
        if not pairs:
            raise RecordRejected("no_turns", f'"text" holds no {style} turns', "text")
        turns = [Turn(role, content) for role, content in pairs]
        meta = with_provenance(own_fields(record, _RECORD, _RECORD), self.name, style=style)
        yield Conversation(rid, turns, meta, source, record)

    def write(self, conv: Conversation) -> dict[str, Any]:
        from ..templates import TemplateRenderError

        template = self.template
        try:
            text = template.render_conversation(conv)
        except TemplateRenderError as e:
            raise RecordRejected(e.reason, e.message) from None
        if not text.strip():
            # A template that leaves out every turn given (a system-only template, roles it
            # does not know) would write a training example with nothing to learn from.
            what = "only white space" if text else "an empty text"
            raise RecordRejected("template_error", f"chat template {template.name!r} rendered {what}")
        out: dict[str, Any] = {"id": conv.written_id(), "text": text}
        put_fields(out, conv.meta, _RECORD)  # a field of its own named "text": "convkit:text"
        prev = out.get(PROVENANCE_KEY)
        out[PROVENANCE_KEY] = {**(prev if isinstance(prev, dict) else {}), **template.provenance()}
        return out
