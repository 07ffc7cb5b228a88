"""Chat templates: the built-in ones and any Jinja chat template, rendered in a sandbox.

A chat template turns a list of messages into the text a model is trained on. convkit ships
``chatml``, ``llama-2``, ``llama-3``, ``vicuna-v1.1`` (``vicuna``) and ``alpaca``, written as Jinja
sources like any other, and loads others from a ``.jinja`` file, a ``tokenizer_config.json``
(its ``chat_template``, a string or a list of named templates), a ``chat_template.json``, or a
model directory holding one of these. The built-in formats have no way to write a tool call:
they refuse a message that makes one (``tool_calls``, OpenAI's older ``function_call``) rather
than write it as its text alone; a tool-calling model's own template renders them.

Templates come from downloaded files, so they are rendered as Hugging Face transformers renders
them, in Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`: no attribute starting
with ``_``, no Python internals (``__class__``, ``__globals__``, ``mro``), no method that changes
the messages, no loader (so ``include``/``import``/``extends`` cannot read files), ``range``
bounded. On top of that, convkit bounds what a template can allocate: before it runs, every
operation that can grow a value past :data:`MAX_SEQUENCE` is checked (repetition, ``+`` and ``~``
concatenation, ``**``, printf and ``str.format`` widths, the padding, replacing, joining and
translating str methods and filters, ``tojson``'s indent, ``lipsum``, ``indent``'s width on
every line, products of huge integers, the text of a container about to be printed or
formatted, measured without building it), and so are the size of the output, what one render
builds in all (:data:`MAX_BUILT`) and its time (:data:`MAX_RENDER_SECONDS`, checked at every call
and every 1,024 steps of a loop). Reaching for a hidden attribute is refused, not rendered as
nothing. The context is transformers': ``messages``, ``add_generation_prompt``, ``bos_token``,
``eos_token``, ``tools`` and ``documents`` (None when not given), ``raise_exception(msg)``,
``strftime_now(fmt)``, the ``tojson`` filter, loop controls and the ``{% generation %}`` block
(rendered as its body).
``strftime_now`` formats the template's ``now`` when it is set (a conversion run sets it once, from
``Options.template_time``, so that every worker renders the same date and a rerun can pin it),
else the real time, as transformers does.

Errors: a template that does not compile, or tries to break out of the sandbox, raises
:class:`TemplateSecurityError` / :class:`~convkit.errors.ConfigError` (the template is at fault,
every record would fail); a template that rejects one conversation (``raise_exception``, a
missing key, a wrong type) raises :class:`TemplateRenderError`, which writers turn into a
rejection with reason ``template_error``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError, ConvkitError
from .model import media_parts

if TYPE_CHECKING:
    from .model import Conversation

__all__ = [
    "BUILTIN_TEMPLATES",
    "ChatTemplate",
    "TemplateOverheads",
    "TemplateRenderError",
    "TemplateSecurityError",
    "builtin_template_names",
    "conversation_messages",
    "load_template",
    "rendered_token_counts",
    "sandboxed_environment",
    "template_overheads",
    "trained_counts",
]

#: Longest string or list a template may build by repetition or concatenation (characters or
#: items); far above any conversation, far below what would exhaust memory.
MAX_SEQUENCE = 50_000_000
#: Widest JSON indent a template may ask ``tojson`` for.
MAX_INDENT = 64
#: Output allowance: this many times the characters of the messages, plus MIN_OUTPUT.
OUTPUT_FACTOR = 20
MIN_OUTPUT = 1_000_000

#: What a template may build in all while rendering one conversation (characters or items,
#: counted as each value is made): this, or the quadratic cost of building the text message by
#: message, whichever is more. A loop making many values each under MAX_SEQUENCE stops here.
MAX_BUILT = 8 * MAX_SEQUENCE
#: Longest a template may run on one conversation; a real one takes milliseconds.
MAX_RENDER_SECONDS = 10.0
#: Largest integer a template may compute, in bits (as for powers).
MAX_INT_BITS = 65536


class _Render(threading.local):
    """The limits of the render running on this thread: when it must end, and what it has
    built so far against what it may."""

    deadline = float("inf")
    built = 0
    budget = MAX_BUILT


_RENDER = _Render()


def _tick() -> None:
    if time.monotonic() > _RENDER.deadline:
        raise _security_error(f"the template ran for over {MAX_RENDER_SECONDS:g} s")


def _timed(iterable: Any) -> Iterator[Any]:
    """``iterable``'s items, with the clock checked every 1,024: what a ``{% for %}`` loop and
    ``range`` run over, so that nested loops over long strings or lists stop at the time
    limit too."""
    for k, item in enumerate(iterable):
        if not k & 1023:
            _tick()
        yield item


def _security_error(message: str) -> Exception:
    from jinja2.exceptions import SecurityError

    return SecurityError(message)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _text_size(value: Any) -> int:
    """About how many characters ``str(value)`` (or JSON) would take, without building it: a
    list that holds itself twice at each of 60 levels is tiny, its text is not. Shared parts
    are measured once; a part inside itself counts as the few characters of "[...]". Walks
    with its own stack (data may be nested a thousand levels deep) and stops counting past
    MAX_SEQUENCE."""

    def leaf(v: Any) -> int:
        if isinstance(v, (str, bytes)):
            return len(v) + 3
        if _is_int(v):
            return v.bit_length() * 30103 // 100000 + 2  # its decimal digits, and a sign
        return 24

    def items(v: Any) -> Iterator[Any]:
        if isinstance(v, dict):
            for k, x in v.items():
                yield k
                yield x
        else:
            yield from v

    if not isinstance(value, _CONTAINERS):
        return leaf(value)
    sizes = {id(value): 5}  # while a part is measured, a reference to it inside is "[...]"
    stack: list[list[Any]] = [[value, items(value), 2]]
    while True:
        top = stack[-1]
        for child in top[1]:
            if isinstance(child, _CONTAINERS):
                known = sizes.get(id(child))
                if known is None:
                    sizes[id(child)] = 5
                    stack.append([child, items(child), 2])
                    break
                top[2] += known + 2
            else:
                top[2] += leaf(child) + 2
            if top[2] > MAX_SEQUENCE:
                return top[2]
        else:
            stack.pop()
            sizes[id(top[0])] = top[2]
            if not stack:
                return top[2]
            stack[-1][2] += top[2] + 2
            if stack[-1][2] > MAX_SEQUENCE:
                return stack[-1][2]


class _TimedRange(Sequence[int]):
    """The templates' ``range``: the sandbox's (at most MAX_RANGE items) that checks the clock
    while a loop runs over it, so that nested loops cannot run for hours."""

    __slots__ = ("_range",)

    def __init__(self, r: range) -> None:
        self._range = r

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, i: Any) -> Any:
        v = self._range[i]
        return _TimedRange(v) if isinstance(v, range) else v

    def __iter__(self) -> Iterator[int]:
        return _timed(self._range)

    def __contains__(self, x: object) -> bool:
        return x in self._range

    def __repr__(self) -> str:
        return repr(self._range)


# A printf conversion's width and precision ("%-60s", "%.*f"); "%%" has neither.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


INSTALL_HINT = "chat templates need jinja2: pip install jinja2"


class TemplateRenderError(ConvkitError):
    """A template refused one conversation (``raise_exception``, a missing key, a wrong type)."""

    reason = "template_error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TemplateSecurityError(ConfigError):
    """A template tried to leave the sandbox or to exhaust memory: the template is hostile."""


# --------------------------------------------------------------------------- built-in templates


@dataclass(frozen=True, slots=True)
class BuiltinTemplate:
    source: str
    bos_token: str
    eos_token: str
    description: str


_VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_ALPACA_SYSTEM = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def _no_tool_calls(name: str) -> str:
    # None of the built-in formats has a way to write a tool call, or an image: a message that
    # makes one would be written as its text alone (often nothing), so the template refuses it
    # and the conversation goes to the rejects with this message.
    return (
        "{% if 'tool_calls' in message and message['tool_calls'] or 'function_call' in message "
        "and message['function_call'] %}"
        "{{ raise_exception('" + name + " has no way to write tool calls; use the chat template "
        "of a model trained for tools (its tokenizer_config.json)') }}{% endif %}"
        "{% if message['content'] is not string %}"
        "{{ raise_exception('" + name + " holds text only: a message has images or other "
        "non-text parts; use the chat template of a model trained on them') }}{% endif %}"
    )


# The sources are kept on few lines on purpose: whitespace outside tags is output.
BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    "chatml": BuiltinTemplate(
        "{% for message in messages %}"
        + _no_tool_calls("chatml")
        + "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "",
        "<|im_end|>",
        "ChatML: <|im_start|>role\\ncontent<|im_end|> per message",
    ),
    "llama-2": BuiltinTemplate(
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
        "{% else %}{% set loop_messages = messages %}{% set system_message = none %}{% endif %}"
        "{% for message in loop_messages %}"
        + _no_tool_calls("llama-2")
        + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('llama-2 needs roles alternating user/assistant after one optional "
        "system message') }}"
        "{% endif %}"
        "{% if loop.index0 == 0 and system_message is not none %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
        "{% else %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}"
        "{% endfor %}",
        "<s>",
        "</s>",
        "Llama 2 chat: <s>[INST] <<SYS>>…<</SYS>> user [/INST] answer </s>",
    ),
    "llama-3": BuiltinTemplate(
        "{{ bos_token }}"
        "{% for message in messages %}"
        + _no_tool_calls("llama-3")
        + "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
        "+ message['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
        "{% endif %}",
        "<|begin_of_text|>",
        "<|eot_id|>",
        "Llama 3 instruct: <|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>",
    ),
    "vicuna-v1.1": BuiltinTemplate(
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set loop_messages = messages[1:] %}{{ messages[0]['content'] + ' ' }}"
        "{% else %}{% set loop_messages = messages %}{{ '"
        + _VICUNA_SYSTEM.replace("'", "\\'")
        + " ' }}{% endif %}"
        "{% for message in loop_messages %}"
        + _no_tool_calls("vicuna-v1.1")
        + "{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT: ' + message['content'] + eos_token }}"
        "{% else %}{{ raise_exception('vicuna-v1.1 has no role ' + message['role'] + ' after the "
        "first message') }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}",
        "<s>",
        "</s>",
        "FastChat's vicuna_v1.1: system USER: … ASSISTANT: …</s>",
    ),
    "alpaca": BuiltinTemplate(
        "{% if messages and messages[0]['role'] == 'system' %}"
        "{% set loop_messages = messages[1:] %}{{ messages[0]['content'] + '\\n\\n' }}"
        "{% else %}{% set loop_messages = messages %}{{ '" + _ALPACA_SYSTEM + "\\n\\n' }}"
        "{% endif %}"
        "{% for message in loop_messages %}"
        + _no_tool_calls("alpaca")
        + "{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}"
        "{% else %}{{ raise_exception('alpaca has no role ' + message['role'] + ' after the "
        "first message') }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
        "",
        "</s>",
        "Stanford Alpaca's prompt as a chat: preamble, ### Instruction:, ### Response:",
    ),
}
_BUILTIN_ALIASES = {"vicuna": "vicuna-v1.1", "llama2": "llama-2", "llama3": "llama-3"}


def builtin_template_names() -> list[str]:
    """Names of the built-in templates (aliases not included)."""
    return list(BUILTIN_TEMPLATES)


# --------------------------------------------------------------------------- the sandbox

_ENV: Any = None


def sandboxed_environment() -> Any:
    """The shared Jinja environment chat templates compile in (created on first use)."""
    global _ENV
    if _ENV is None:
        _ENV = _make_environment()
    return _ENV


def _make_environment() -> Any:
    try:
        import jinja2
        import jinja2.ext
        import jinja2.nodes
        from jinja2.compiler import CodeGenerator, optimizeconst
        from jinja2.exceptions import SecurityError, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None

    def _too_big(n: int) -> None:
        if n > MAX_SEQUENCE:
            raise SecurityError(
                f"the template builds a value of {n} items, over the limit of {MAX_SEQUENCE}"
            )
        state = _RENDER
        built = state.built = state.built + n
        if built > state.budget:
            raise SecurityError(
                f"the template builds over {state.budget} items in all for one conversation"
            )

    def _check_join(separator: str, items: list[Any]) -> None:
        # What joining ``items`` (as text) with ``separator`` would build: str.join, the join
        # filter and ``~`` alike.
        size = len(separator) * max(len(items) - 1, 0)
        _too_big(size + sum(len(x) if isinstance(x, str) else _text_size(x) for x in items))

    def _check_text(value: Any) -> None:
        # A container about to be written out as text (printed, formatted, JSON).
        if isinstance(value, _CONTAINERS):
            _too_big(_text_size(value))

    def _check_widths(numbers: Iterable[str], what: str) -> None:
        for digits in numbers:
            if digits.isdigit() and int(digits) > MAX_SEQUENCE:
                raise SecurityError(f"the template asks for a {what} of {digits}, over the limit")

    def _check_printf(fmt: str, values: Any) -> None:
        # "%60000000s" pads before anything can be measured; "*" takes the width from values.
        for v in (
            values.values()
            if isinstance(values, Mapping)
            else (values if isinstance(values, tuple) else (values,))
        ):
            _check_text(v)
        specs = _PRINTF_SPEC.findall(fmt)
        _check_widths((n for spec in specs for n in spec), "printf width")
        if any("*" in spec for spec in specs):
            items = values if isinstance(values, tuple) else (values,)
            _check_widths((str(v) for v in items if _is_int(v)), "printf width")

    def _check_format(fmt: str, args: Any, kwargs: Any) -> None:
        for v in (*args, *kwargs.values()):
            _check_text(v)
        nested = False
        for _, _, spec, _ in string.Formatter().parse(fmt):
            if spec:
                _check_widths(re.findall(r"\d+", spec), "format width")
                nested = nested or "{" in spec
        if nested:  # "{:{w}}": widths come from the arguments
            _check_widths((str(v) for v in (*args, *kwargs.values()) if _is_int(v)), "width")

    def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        """What a str method would allocate, checked before it runs; returns the arguments
        (``join``'s iterable is read once, here)."""
        if name in ("center", "ljust", "rjust", "zfill"):
            width = args[0] if args else kwargs.get("width")
            if _is_int(width):
                _too_big(width)
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if _is_int(size):
                _too_big(len(text) + text.count("\t") * size)
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str):
            old, new = args[0], args[1]
            if isinstance(new, str):
                found = text.count(old) if old else len(text) + 1
                _too_big(len(text) + found * max(len(new) - len(old), 0))
        elif name == "join" and args:
            items = list(args[0])
            _check_join(text, items)
            args = (items, *args[1:])
        elif name in ("format", "format_map"):
            values = args[0] if name == "format_map" and args else kwargs
            _check_format(text, args if name == "format" else (), values)
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            _too_big(len(text) * longest)
        return args

    def bounded_concat(join: Any, items: tuple[Any, ...]) -> Any:
        # "a ~ b": Jinja joins the parts in one call; their sizes are known before it.
        _check_join("", list(items))
        return join(items)

    class BoundedCodeGenerator(CodeGenerator):
        """Compiles ``~`` through :func:`bounded_concat` (a namespace string doubled with ``~`` in
        a loop grew without bound) and each ``{% for %}`` over :func:`_timed`."""

        def visit_For(self, node: Any, frame: Any) -> None:
            node.iter = jinja2.nodes.Call(
                jinja2.nodes.EnvironmentAttribute("timed_iter"),
                [node.iter],
                [],
                None,
                None,
                lineno=node.lineno,
            )
            super().visit_For(node, frame)

        @optimizeconst
        def visit_Concat(self, node: Any, frame: Any) -> None:
            if frame.eval_ctx.volatile:
                func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
            elif frame.eval_ctx.autoescape:
                func_name = "markup_join"
            else:
                func_name = "str_join"
            self.write(f"environment.bounded_concat({func_name}, (")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        # Repetition, concatenation, printf padding and powers are how a short template exhausts
        # memory; so are str methods that pad, replace or join, checked in call().
        intercepted_binops = frozenset(["*", "**", "+", "%"])
        code_generator_class = BoundedCodeGenerator

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.bounded_concat = bounded_concat
            self.timed_iter = _timed

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "+" and type(left) is str and type(right) is str:
                # The common case (a template gluing its markers to a message), checked the
                # same way in fewer steps: it runs several times per message.
                _too_big(len(left) + len(right))
                return left + right
            sequences = (str, bytes, bytearray, list, tuple)
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, sequences) and isinstance(n, int):
                        _too_big(len(seq) * n)
                if (
                    _is_int(left)
                    and _is_int(right)
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS
                ):
                    raise SecurityError("the template computes a product too large to hold")
            elif operator == "+":
                if isinstance(left, sequences) and isinstance(right, sequences):
                    _too_big(len(left) + len(right))
            elif operator == "%" and isinstance(left, str):
                _check_printf(left, right)
            elif (
                operator == "**"
                and isinstance(left, int)
                and isinstance(right, int)
                and abs(left) > 1
                and (right > 4096 or (right > 64 and abs(left).bit_length() * right > 65536))
            ):
                raise SecurityError("the template computes a power too large to hold")
            return super().call_binop(context, operator, left, right)

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            # Jinja's sandbox answers "x.__class__" with an undefined value that renders as
            # nothing, so a template probing for a way out still writes training text. Reaching
            # for what the sandbox hides is refused on the spot instead.
            raise SecurityError(
                f"access to attribute {attribute!r} of a {type(obj).__name__} is not allowed"
            )

        def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            # str.format comes wrapped by the sandbox (its __wrapped__ is the bound method).
            _tick()
            method = getattr(obj, "__wrapped__", obj)
            owner = getattr(method, "__self__", None)
            if isinstance(owner, str) and isinstance(getattr(method, "__name__", None), str):
                args = _check_str_method(owner, method.__name__, args, kwargs)
            return super().call(context, obj, *args, **kwargs)

    class GenerationBlock(jinja2.ext.Extension):
        """``{% generation %}…{% endgeneration %}`` (marks assistant text): renders the body."""

        tags: ClassVar[set[str]] = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(
                lineno
            )

        def _body(self, caller: Any) -> str:
            return caller()

    def raise_exception(message: Any) -> None:
        raise TemplateError(str(message))

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: Any = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        # transformers' tojson: no HTML escaping (unlike Jinja's), arguments as json.dumps. An
        # indent repeats on every line at every depth: more than a few columns is an attack.
        if (_is_int(indent) and indent > MAX_INDENT) or (
            isinstance(indent, str) and len(indent) > MAX_INDENT
        ):
            raise SecurityError(f"the template asks for a JSON indent of {indent!r}")
        _check_text(value)
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            indent=indent,
            separators=separators,
            sort_keys=sort_keys,
        )

    def finalize(value: Any) -> Any:
        # What {{ … }} writes: a container's text is built by str() in one go.
        _check_text(value)
        return value

    env = BoundedEnvironment(
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[GenerationBlock, jinja2.ext.loopcontrols],
        autoescape=False,
        keep_trailing_newline=False,
    )
    env.filters["tojson"] = tojson
    # Filters that take a width allocate it whatever the input: bound them.
    for name in ("center", "indent", "wordwrap"):
        env.filters[name] = _bounded_width(env.filters[name], SecurityError)
    bounded_indent, plain_string = env.filters["indent"], env.filters["string"]

    def indent_filter(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
        # The width is repeated on every line.
        text = str(s)
        w = width if _is_int(width) else len(str(width))
        _too_big(len(text) + max(w, 0) * (text.count("\n") + 1))
        return bounded_indent(s, width, first, blank)

    def string_filter(value: Any) -> Any:
        _check_text(value)
        return plain_string(value)

    env.filters.update(indent=indent_filter, string=string_filter)
    sandbox_range = env.globals["range"]

    def timed_range(*args: Any) -> Any:
        return _TimedRange(sandbox_range(*args))

    env.globals["range"] = timed_range
    plain_format, plain_join, plain_replace = (
        env.filters["format"],
        env.filters["join"],
        env.filters["replace"],
    )

    def format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_printf(str(value), kwargs or args)
        return plain_format(value, *args, **kwargs)

    def join_filter(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        _check_join(str(d), items)
        return plain_join(eval_ctx, items, d, attribute)

    def replace_filter(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_str_method(str(s), "replace", (str(old), str(new)), {})
        return plain_replace(eval_ctx, s, old, new, count)

    _as_filter(join_filter, plain_join)
    _as_filter(replace_filter, plain_replace)
    env.filters.update(format=format_filter, join=join_filter, replace=replace_filter)
    # Filters that make text of what they are given: a container's text is measured first.
    for name in _TEXT_FILTERS:
        if name in env.filters:
            env.filters[name] = _text_first(env.filters[name], _check_text)
    lipsum = env.globals["lipsum"]

    def bounded_lipsum(n: Any = 5, *args: Any, **kwargs: Any) -> Any:
        if _is_int(n) and n > 1000:
            raise SecurityError(f"the template asks for {n} paragraphs of lorem ipsum")
        return lipsum(n, *args, **kwargs)

    env.globals["lipsum"] = bounded_lipsum
    env.globals["raise_exception"] = raise_exception
    # strftime_now comes with each render's context: it formats the template's own time.
    return env


#: Jinja filters that turn their first argument into text (str() of a list, say).
_TEXT_FILTERS = (
    "capitalize",
    "center",
    "e",
    "escape",
    "forceescape",
    "format",
    "indent",
    "lower",
    "pprint",
    "replace",
    "safe",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
    "wordwrap",
)


def _text_first(fn: Any, check: Any) -> Any:
    def checked(*args: Any, **kwargs: Any) -> Any:
        # Filters that take the evaluation context or environment get it first.
        skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0
        if len(args) > skip:
            check(args[skip])
        return fn(*args, **kwargs)

    return _as_filter(checked, fn)


def _bounded_width(fn: Any, error: type[Exception]) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for v in (*args[1:], *kwargs.values()):
            if isinstance(v, int) and not isinstance(v, bool) and v > MAX_SEQUENCE:
                raise error(f"the template asks for a width of {v}, over the limit")
        return fn(*args, **kwargs)

    return _as_filter(bounded, fn)


def _as_filter(wrapper: Any, fn: Any) -> Any:
    """``wrapper``, taking the first arguments Jinja passes ``fn`` (its context or environment,
    by ``jinja_pass_arg``), so that it can stand in for ``fn``."""
    if hasattr(fn, "jinja_pass_arg"):
        wrapper.jinja_pass_arg = fn.jinja_pass_arg
    return wrapper


# --------------------------------------------------------------------------- templates


def _strftime_now(now: datetime | None) -> Any:
    """The template's ``strftime_now``: a plain function (a bound method would carry the
    template object into the sandbox)."""

    def strftime_now(fmt: str) -> str:
        return (now or datetime.now()).strftime(fmt)

    return strftime_now


class ChatTemplate:
    """A compiled chat template with the special tokens it is rendered with.

    ``name`` is how it is recorded in the output's provenance (a built-in name, or the file's
    name); ``sha256`` identifies its source exactly. Instances pickle by source, for worker
    processes.
    """

    def __init__(
        self,
        source: str,
        *,
        name: str,
        bos_token: str = "",
        eos_token: str = "",
        origin: str | None = None,
        builtin: bool = False,
        now: datetime | None = None,
    ) -> None:
        self.source = source
        self.name = name
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.origin = origin
        self.builtin = builtin
        self.now = now  # what strftime_now formats; None: the real time
        self._compiled: Any = None
        self._compile()

    def _compile(self) -> Any:
        if self._compiled is None:
            env = sandboxed_environment()  # first: says what to install when jinja2 is missing
            from jinja2.exceptions import TemplateSyntaxError

            try:
                self._compiled = env.from_string(self.source)
            except TemplateSyntaxError as e:
                raise ConfigError(
                    f"chat template {self.name!r} does not compile: {e.message} (line {e.lineno})"
                ) from None
            except (RecursionError, SyntaxError, MemoryError):
                # Jinja's parser recurses once a nesting level, and Python's compiler, which
                # compiles what Jinja generates, has its own limits on nested blocks.
                raise ConfigError(
                    f"chat template {self.name!r} does not compile: "
                    "its expressions or blocks are nested too deeply"
                ) from None
        return self._compiled

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """What the text writer records in ``meta["convkit"]``: the name, and the hash of a file."""
        out: dict[str, Any] = {"template": self.name}
        if not self.builtin:
            out["template_sha256"] = self.sha256
        if self.now is not None and "strftime_now" in self.source:
            out["template_time"] = self.now.isoformat()
        return out

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = False,
        tools: Any = None,
        **context: Any,
    ) -> str:
        """The text of ``messages`` under this template.

        Raises :class:`TemplateRenderError` when the template refuses the messages and
        :class:`TemplateSecurityError` when it breaks the sandbox's rules.
        """
        from jinja2.exceptions import SecurityError, TemplateError

        compiled = self._compile()
        ctx: dict[str, Any] = {
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "strftime_now": _strftime_now(self.now),
            **context,
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            # As transformers renders: templates test "tools is not none", not "is defined".
            "tools": tools,
        }
        ctx.setdefault("documents", None)
        chars = _content_chars(messages)
        limit = OUTPUT_FACTOR * chars + MIN_OUTPUT
        pieces = []
        size = 0
        _RENDER.deadline = time.monotonic() + MAX_RENDER_SECONDS
        _RENDER.built = 0
        _RENDER.budget = max(MAX_BUILT, chars * (len(messages) + 8))
        try:
            for piece in compiled.generate(ctx):
                size += len(piece)
                if size > limit:
                    raise TemplateSecurityError(
                        f"chat template {self.name!r} writes over {limit} characters for "
                        f"messages of {_content_chars(messages)}"
                    )
                pieces.append(piece)
        except SecurityError as e:
            raise TemplateSecurityError(
                f"chat template {self.name!r} broke the sandbox: {e}"
            ) from None
        except TemplateError as e:
            raise TemplateRenderError(f"chat template {self.name!r}: {e.message or e}") from None
        except (TemplateSecurityError, MemoryError):
            raise
        except OverflowError as e:
            if "MAX_RANGE" in str(e):  # the sandbox's bound on range()
                raise TemplateSecurityError(
                    f"chat template {self.name!r} broke the sandbox: {e}"
                ) from None
            raise TemplateRenderError(
                f"chat template {self.name!r} failed: OverflowError: {e}"
            ) from None
        except RecursionError:
            # A macro calling itself without end, or data nested deeper than the template's
            # loops and tojson recurse: this conversation cannot be rendered.
            raise TemplateRenderError(
                f"chat template {self.name!r} failed: it recursed too deeply (its macros, or "
                "the nesting of the data)"
            ) from None
        except Exception as e:  # noqa: BLE001 - a template's own failure on this data
            raise TemplateRenderError(
                f"chat template {self.name!r} failed: {type(e).__name__}: {e}"
            ) from None
        finally:
            _RENDER.deadline = float("inf")
        return "".join(pieces)

    def render_conversation(
        self, conv: Conversation, *, add_generation_prompt: bool = False, **context: Any
    ) -> str:
        """The text of a conversation (with ``tools`` from its metadata when it has some)."""
        tools = conv.meta.get("tools")
        return self.render(
            conversation_messages(conv),
            add_generation_prompt=add_generation_prompt,
            tools=tools if tools else None,
            **context,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("source", "name", "bos_token", "eos_token", "origin", "builtin", "now")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._compiled = None

    def __repr__(self) -> str:
        return f"ChatTemplate({self.name!r}, sha256={self.sha256[:12]}…)"


def conversation_messages(conv: Conversation) -> list[dict[str, Any]]:
    """A conversation's turns as the message dicts a chat template expects."""
    from .formats.messages import message_dict

    out = []
    for t in conv.turns:
        m = message_dict(t)
        # Templates get the canonical role and the text; content parts stay in the metadata,
        # unless some are not text (images): then the parts, as a multimodal template takes them.
        m["role"] = t.role
        if not media_parts(t):
            m["content"] = t.content
        out.append(m)
    return out


def _content_chars(messages: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    for m in messages:
        c = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):  # content parts: their text
            for part in c:
                text = part.get("text") if isinstance(part, Mapping) else None
                if isinstance(text, str):
                    n += len(text)
    return n


# --------------------------------------------------------------------------- loading


def load_template(
    spec: str | os.PathLike[str],
    *,
    variant: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
) -> ChatTemplate:
    """A chat template by built-in name or from a file or model directory.

    ``spec`` is a built-in name (see :func:`builtin_template_names`), a ``.jinja`` file, a
    ``tokenizer_config.json`` or ``chat_template.json``, or a directory holding one of these.
    ``variant`` picks one of several named templates in a ``tokenizer_config.json`` (default:
    the one named ``default``). ``bos_token``/``eos_token`` override the template's (a
    built-in's own, or the ``tokenizer_config.json``'s). Raises :class:`ConfigError`.
    """
    text = os.fspath(spec)
    key = _BUILTIN_ALIASES.get(text, text)
    if key in BUILTIN_TEMPLATES:
        if variant is not None:
            raise ConfigError(f"built-in chat template {key!r} has no variants")
        b = BUILTIN_TEMPLATES[key]
        return _overrides_used(
            ChatTemplate(
                b.source,
                name=key,
                bos_token=b.bos_token if bos_token is None else bos_token,
                eos_token=b.eos_token if eos_token is None else eos_token,
                builtin=True,
            ),
            bos_token,
            eos_token,
        )
    path = Path(text).expanduser()
    if path.is_dir():
        path = _template_in_dir(path)
    elif not path.is_file():
        raise ConfigError(
            f"unknown chat template {text!r}: not a built-in "
            f"({', '.join(builtin_template_names())}) nor a file"
        )
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read chat template {text!r}: {e}") from None
    if path.suffix == ".json":
        source, tokens, name = _from_json(data, path, variant)
    else:
        if variant is not None:
            raise ConfigError(f"chat template file {path.name!r} has no variants")
        source, tokens, name = data, {}, path.name
    if path.name in _MODEL_TEMPLATE_FILES:
        # A model folder as transformers saves it: the template in its own file, BOS and EOS
        # in tokenizer_config.json beside it (without them the text would never end in EOS).
        tokens = {**_sibling_tokens(path), **tokens}
    return _overrides_used(
        ChatTemplate(
            source,
            name=name,
            bos_token=tokens.get("bos_token", "") if bos_token is None else bos_token,
            eos_token=tokens.get("eos_token", "") if eos_token is None else eos_token,
            origin=str(path),
        ),
        bos_token,
        eos_token,
    )


def _overrides_used(
    template: ChatTemplate, bos_token: str | None, eos_token: str | None
) -> ChatTemplate:
    """``template``, once sure that a BOS or EOS text given for it is one it writes: ChatML
    has neither, Llama 3 no EOS variable, and a token that changes nothing is a mistake that
    would otherwise only show in the training text."""
    given = [k for k, v in (("bos_token", bos_token), ("eos_token", eos_token)) if v is not None]
    if not given:
        return template
    from jinja2 import meta

    used = meta.find_undeclared_variables(sandboxed_environment().parse(template.source))
    for key in given:
        if key not in used:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{key} ({flag}) has no effect: chat template {template.name!r} never uses "
                f"{key}"
            )
    return template


def _template_in_dir(path: Path) -> Path:
    for candidate in ("chat_template.jinja", "tokenizer_config.json", "chat_template.json"):
        p = path / candidate
        if p.is_file():
            if candidate == "tokenizer_config.json":
                try:
                    if "chat_template" not in json.loads(p.read_text(encoding="utf-8")):
                        continue
                except (OSError, ValueError):
                    continue
            return p
    raise ConfigError(
        f"directory {str(path)!r} holds no chat template "
        "(chat_template.jinja, or a tokenizer_config.json or chat_template.json with one)"
    )


def _from_json(data: str, path: Path, variant: str | None) -> tuple[str, dict[str, str], str]:
    try:
        config = json.loads(data)
    except ValueError as e:
        raise ConfigError(f"cannot read chat template {path.name!r}: malformed JSON: {e}") from None
    if not isinstance(config, dict) or "chat_template" not in config:
        raise ConfigError(f'{path.name!r} has no "chat_template"')
    tpl = config["chat_template"]
    name = path.name
    if isinstance(tpl, list):
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        want = variant or "default"
        if want not in named:
            hint = (
                " (pick one with --template-variant for --to text, --count-template-variant "
                "for --count-template)"
                if variant is None
                else ""
            )
            raise ConfigError(
                f"{path.name!r} has no chat template named {want!r}; "
                f"it has: {', '.join(str(n) for n in named)}{hint}"
            )
        tpl = named[want]
        name = f"{path.name}:{want}"
    elif variant is not None:
        raise ConfigError(f"{path.name!r} has one chat template, no variant {variant!r}")
    if not isinstance(tpl, str):
        raise ConfigError(f"the chat template in {path.name!r} is not a string")
    return tpl, _special_tokens(config), name


#: Files that hold only a model's chat template; its BOS and EOS are in tokenizer_config.json.
_MODEL_TEMPLATE_FILES = frozenset(("chat_template.jinja", "chat_template.json"))


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    tokens = {}
    for key in ("bos_token", "eos_token"):
        value = config.get(key)
        if isinstance(value, dict):  # a serialised AddedToken
            value = value.get("content")
        if isinstance(value, str):
            tokens[key] = value
    return tokens


def _sibling_tokens(path: Path) -> dict[str, str]:
    """BOS and EOS from the tokenizer_config.json beside ``path``, if there is a readable one."""
    config_path = path.parent / "tokenizer_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {str(config_path)!r} (for BOS and EOS): {e}") from None
    return _special_tokens(config) if isinstance(config, dict) else {}


# --------------------------------------------------------------------------- token overheads


@dataclass(frozen=True, slots=True)
class TemplateOverheads:
    """What a chat template adds, in tokens, around the text of the turns.

    ``turn[role]`` is the cost of the fixed text around one turn of that role (header,
    separators, EOS), ``segment`` the cost once per rendered text (BOS, frame, a default system
    prompt when there is no system turn). ``turn_overhead`` is the largest per-turn cost of the
    roles, the single number the splitter takes. They are measured once per template and
    tokenizer by rendering probe conversations whole, so merges across a boundary between the
    template's text and a turn's text are counted as the template makes them; text whose first
    or last characters merge differently can still be off by a token at a boundary, which is
    why :func:`rendered_token_counts` exists to check a segment exactly.
    """

    turn: dict[str, int]
    segment: int
    turn_overhead: int

    def estimate(self, roles: Sequence[str], counts: Sequence[int]) -> int:
        """Tokens of a rendered text with these turns, from per-turn counts of the content."""
        return self.segment + sum(
            self.turn.get(r, self.turn_overhead) + c for r, c in zip(roles, counts, strict=True)
        )


def _counter(tokenizer: Any) -> Any:
    """Something with ``count(texts) -> list[int]``: a TokenCounter as is, else one made of a
    ``tokenizers.Tokenizer`` or a tokenizer spec (truncation and padding turned off)."""
    if hasattr(tokenizer, "count"):
        return tokenizer
    from .tokens import TokenCounter

    return TokenCounter(tokenizer)


def trained_counts(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """The token count of each rendered text as a trainer tokenises it
    (:meth:`convkit.tokens.TokenCounter.count_trained`): with the tokenizer's special tokens
    (llama's BOS, t5's EOS), except those the text already has at the same end."""
    counter = _counter(tokenizer)
    count_trained = getattr(counter, "count_trained", None)
    return count_trained(texts) if count_trained is not None else counter.count(texts)


def template_overheads(
    template: ChatTemplate, tokenizer: Any, *, probe: str = "a"
) -> TemplateOverheads:
    """Measure the fixed token costs of ``template`` under ``tokenizer`` (a TokenCounter or a
    ``tokenizers.Tokenizer``), counting rendered texts as :func:`trained_counts` does (the
    tokenizer's BOS, when the template does not write it, is part of ``segment``).

    Probes are conversations whose every turn is ``probe``; each cost is the difference of the
    token counts of two whole renderings, minus the probe's own tokens. Roles a template refuses
    (``tool`` in Llama 2, say) are left out of ``turn``. A template that refuses a conversation
    without a system message is measured with one; one that refuses every probe gets no
    overheads (the exact counts of the segments alone keep them within the limit).
    """
    counter = _counter(tokenizer)
    count = counter.count
    u, a = {"role": "user", "content": probe}, {"role": "assistant", "content": probe}
    sys_ = {"role": "system", "content": probe}
    c = count([probe])[0]
    probes = {
        "ua": [u, a],
        "uau": [u, a, u],
        "uaua": [u, a, u, a],
        "sua": [sys_, u, a],
        "uat": [u, a, {"role": "tool", "content": probe}],
    }
    # A template that insists on a system message (or refuses one) is measured with it: its
    # header is then part of every segment's cost, as every segment carries the prompt.
    for prefix in ([], [sys_]):
        texts: dict[str, str] = {}
        try:
            for key, msgs in probes.items():
                if prefix and key == "sua":
                    continue
                try:
                    texts[key] = template.render([*prefix, *msgs])
                except TemplateRenderError:
                    if key in ("ua", "uau", "uaua"):
                        raise
        except TemplateRenderError:
            continue
        break
    else:
        # No probe renders: nothing to estimate with. Every segment is still rendered and
        # counted exactly before it is written, so the split stays within the limit.
        return TemplateOverheads({}, 0, 0)
    counts = dict(zip(texts, trained_counts(counter, list(texts.values())), strict=True))
    turn = {
        "user": counts["uau"] - counts["ua"] - c,
        "assistant": counts["uaua"] - counts["uau"] - c,
    }
    if prefix:
        turn["system"] = 0  # its header is in the segment's cost, its text counted as a turn's
    elif "sua" in counts:
        turn["system"] = counts["sua"] - counts["ua"] - c
    if "uat" in counts:
        turn["tool"] = counts["uat"] - counts["ua"] - c
    segment = counts["ua"] - turn["user"] - turn["assistant"] - (2 + len(prefix)) * c
    return TemplateOverheads(
        turn, segment, max(turn["user"], turn["assistant"], turn.get("tool", 0))
    )


def rendered_token_counts(
    template: ChatTemplate, tokenizer: Any, conversations: Sequence[Conversation]
) -> list[int]:
    """The exact token count of each conversation rendered through ``template``, as a trainer
    tokenises it (:func:`trained_counts`), in one batched tokenizer call: how a splitter checks
    the segments it made against its limit."""
    texts = [template.render_conversation(c) for c in conversations]
    return trained_counts(tokenizer, texts)
