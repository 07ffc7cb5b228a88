"""The format protocol: a reader turns raw records into conversations, a writer the reverse.

Formats register themselves by name; the CLI takes its ``--from`` and ``--to`` choices from the
registry, so adding a dataset format is one new module here plus its tests.

Reading
    The pipeline calls :meth:`Format.read_stream` with the records of its inputs, in order. The
    default calls :meth:`Format.read` once per record, and turns a :class:`RecordRejected` it
    raises into a :class:`Rejection` item, so the stream never stops on bad data. A reader whose
    one record makes many conversations (a task file, a message tree) may also yield a
    :class:`Rejection` from ``read`` for one bad part and go on with the others. Formats whose
    records only make sense together (flat OASST rows, one message per line) override
    ``read_stream`` and keep their own, documented, state.

Options
    A format declares its options as :class:`Option` specs; ``get_format(name, **options)``
    checks them and the instance reads them from ``self.opt``. ``convkit formats`` lists them.

Detection
    ``--from auto`` asks every reader, in :attr:`Format.detect_priority` order, whether it
    recognises a record; :meth:`Format.recognise` says why in words, which is what
    ``convkit detect FILE`` prints. :func:`detect_record` returns the chosen reader, the reason
    and the other readers that would also have accepted the record.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ..errors import ConfigError
from ..io import RawRecord
from ..model import Conversation, Source

#: Key of ``Conversation.meta`` under which readers (and the text writer) record how a record
#: was turned into a conversation: ``{"reader": name, <rule>: <value>, ...}``.
PROVENANCE_KEY = "convkit"
#: The reason of a record that makes no conversation at all (``convkit.reasons``).
NO_CONVERSATION = "no_conversation"


class RecordRejected(Exception):
    """A record of the wrong shape: carries a snake_case reason and a message saying where.

    Raised by readers (and by writers that cannot hold a conversation); the pipeline turns it
    into a rejects line, never into a crash.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.field = field
        super().__init__(message)


@dataclass(slots=True)
class Rejection:
    """A rejected record, or a rejected part of one, as an item of a reader's output stream.

    ``id`` is the conversation id the part would have had (``None`` when the whole record is
    rejected); ``raw`` is what the rejects file should show (the record, or the bad part).
    """

    reason: str
    message: str
    source: Source
    field: str | None = None
    id: str | None = None
    raw: Any = None

    def where(self) -> str:
        return self.source.where()

    @classmethod
    def of(
        cls, exc: RecordRejected, source: Source, raw: Any = None, id: str | None = None
    ) -> Rejection:
        return cls(exc.reason, exc.message, source, exc.field, id, raw)


def type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)


_OPTION_TYPES = {bool: "a boolean", int: "an integer", str: "a string"}


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a format: its name (a Python identifier), type, default and help.

    ``side`` says whether the reader (``"read"``) or the writer (``"write"``) uses it.
    ``choices`` restricts a string option; ``minimum`` bounds an integer one. ``default=None``
    on a string option means "not set". ``flags``: more command-line names for it, beside
    ``--name`` (with ``-`` for ``_``).
    """

    name: str
    type: type
    default: Any
    help: str
    side: str = "read"
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    flags: tuple[str, ...] = ()

    def check(self, fmt: str, value: Any) -> Any:
        """The value if it fits this option, else :class:`ConfigError` saying what was expected."""
        if value is None and self.default is None:
            return None
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"option {self.name!r} of format {fmt!r} must be {_OPTION_TYPES[self.type]}, "
                f"got {type_name(value)}"
            )
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"option {self.name!r} of format {fmt!r} must be one of "
                f"{', '.join(self.choices)}; got {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(
                f"option {self.name!r} of format {fmt!r} must be at least {self.minimum}, got {value}"
            )
        return value

    def parse(self, text: str) -> Any:
        """The value of a command-line string (``"3"``, ``"true"``) for this option's type."""
        if self.type is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"option {self.name!r} takes true or false, got {text!r}")
        if self.type is int:
            try:
                return int(text)
            except ValueError:
                raise ConfigError(f"option {self.name!r} takes an integer, got {text!r}") from None
        return text


class RecordSink(Protocol):
    """Where written records go: :class:`convkit.io.RecordWriter` or a format's own sink."""

    def write(self, obj: Any) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class Format:
    """Base class of dataset formats. Subclasses set ``name`` and implement what they support."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: What ``--from auto`` looks for, in words (``convkit formats`` shows it).
    recognises: ClassVar[str] = ""
    #: Lower is asked first by ``--from auto``; specific shapes go before generic ones.
    detect_priority: ClassVar[int] = 100
    #: Keys that only this format's records hold together: a record that has them all but that
    #: :meth:`recognise` refuses (a field of the wrong type) is read with this reader under
    #: ``--from auto`` only to word why it is rejected, naming the field.
    claims: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    #: True when ``read_stream`` keeps state across records (flat OASST rows): the records of
    #: an input must then reach one ``read_stream`` call in order, not be split into batches
    #: read apart (by worker processes, say). Stateless readers may be run per record or batch.
    stateful: ClassVar[bool] = False
    #: Reasons this format's reader or writer rejects with, beyond the common ones
    #: (``invalid_record``, ``unknown_role``): ``convkit reasons`` lists them.
    reasons: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        specs = {o.name: o for o in self.options}
        for key in options:
            if key not in specs:
                if not specs:
                    raise ConfigError(f"format {self.name!r} takes no options; got {key!r}")
                raise ConfigError(
                    f"unknown option {key!r} for format {self.name!r}; "
                    f"its options: {', '.join(sorted(specs))}"
                )
        self.opt: dict[str, Any] = {
            n: s.check(self.name, options[n]) if n in options else s.default
            for n, s in specs.items()
        }

    # ------------------------------------------------------------------ detection

    def recognise(self, record: Any) -> str | None:
        """Why this reader accepts ``record`` (a short phrase), or None when it does not."""
        if type(self).detect is Format.detect:
            return None
        return (self.recognises or self.description) if self.detect(record) else None

    def detect(self, record: Any) -> bool:
        """True when ``record`` has this format's shape (used by ``--from auto``)."""
        if type(self).recognise is Format.recognise:
            return False
        return self.recognise(record) is not None

    # ------------------------------------------------------------------ reading

    def read(self, record: Any, source: Source) -> Iterator[Conversation | Rejection]:
        """Conversations made from one raw record; raise :class:`RecordRejected` for a bad one.

        Readers that make many conversations from one record may yield a :class:`Rejection` for
        a bad part and go on. A reader that makes exactly one implements :meth:`read_one`
        instead, and this returns it.
        """
        if type(self).read_one is Format.read_one:
            raise ConfigError(f"format {self.name!r} cannot be read")
        return iter((self.read_one(record, source),))

    def read_one(self, record: Any, source: Source) -> Conversation:
        """The one conversation of a record, for readers that make exactly one: the stream
        then calls it without a generator per record."""
        raise ConfigError(f"format {self.name!r} cannot be read")

    def read_stream(self, records: Iterable[Any]) -> Iterator[Any]:
        """Conversations and rejections of a stream of :class:`convkit.io.RawRecord`.

        Items that are not raw records (``BadRecord`` from a reader run with ``on_error='skip'``)
        are passed through in place, so that the caller sees everything in input order.
        """
        one = None if type(self).read_one is Format.read_one else self.read_one
        for rec in records:
            if rec.__class__ is RawRecord:
                value = rec.value
            else:
                value = getattr(rec, "value", _MISSING)
                if value is _MISSING:
                    yield rec
                    continue
            source = Source(rec.file, rec.index, rec.line)
            try:
                if one is not None:
                    conv = one(value, source)
                else:
                    made = False
                    for got in self.read(value, source):
                        made = True
                        yield got
                    if not made:
                        # Every record ends up in the output or the rejects: one that makes
                        # nothing (a task file without instances) is rejected, not skipped.
                        raise RecordRejected(NO_CONVERSATION, "the record holds no conversation")
                    continue
            except RecordRejected as e:
                yield Rejection.of(e, source, value)
                continue
            yield conv

    # ------------------------------------------------------------------ writing

    def write(self, conv: Conversation) -> dict[str, Any]:
        """The output record of one conversation.

        Raises :class:`RecordRejected` for a conversation the format cannot hold (the alpaca
        writer and a longer conversation, say), which the pipeline writes to the rejects.
        """
        raise ConfigError(f"format {self.name!r} cannot be written")

    def open_sink(self, path: str | os.PathLike[str]) -> RecordSink:
        """Where the records of :meth:`write` go: JSON Lines, or a JSON array for ``.json``."""
        from ..io import RecordWriter

        return RecordWriter(path)

    @classmethod
    def can_read(cls) -> bool:
        return (
            cls.read is not Format.read
            or cls.read_one is not Format.read_one
            or cls.read_stream is not Format.read_stream
        )

    @classmethod
    def can_write(cls) -> bool:
        return cls.write is not Format.write


_MISSING = object()
_REGISTRY: dict[str, type[Format]] = {}


def register(cls: type[Format]) -> type[Format]:
    """Class decorator adding a format to the registry under its name and aliases."""
    for key in (cls.name, *cls.aliases):
        if key in _REGISTRY or key == "auto":
            raise RuntimeError(f"format name {key!r} registered twice")
        _REGISTRY[key] = cls
    _ORDER.clear()
    return cls


def get_format(name: str, **options: Any) -> Format:
    """A format by name or alias, with its options checked.

    ``"auto"`` gives a reader that detects the format of each record and hands every option to
    the readers that declare it (see :class:`convkit.formats.auto.AutoFormat`).
    """
    if name == "auto":
        from .auto import AutoFormat

        return AutoFormat(**options)
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(n for n, c in _REGISTRY.items() if c.name == n))
        raise ConfigError(f"unknown format {name!r}; known formats: {known}") from None
    return cls(**options)


def format_class(name: str) -> type[Format]:
    """The registered class of a name or alias (no instance, no option checks)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(n for n, c in _REGISTRY.items() if c.name == n))
        raise ConfigError(f"unknown format {name!r}; known formats: {known}") from None


def format_reasons() -> dict[str, str]:
    """Every reason a registered format declares (``Format.reasons``), by name."""
    out: dict[str, str] = {}
    for cls in dict.fromkeys(_REGISTRY.values()):
        for reason, meaning in cls.reasons.items():
            if out.setdefault(reason, meaning) != meaning:
                raise RuntimeError(f"reason {reason!r} is declared twice with two meanings")
    return out


def format_names(*, readable: bool = False, writable: bool = False) -> list[str]:
    """Registered format names (not aliases), optionally only those that read or write."""
    out = []
    for n, c in _REGISTRY.items():
        if c.name != n:
            continue
        if readable and not c.can_read():
            continue
        if writable and not c.can_write():
            continue
        out.append(n)
    return sorted(out)


def default_output_format(input_format: str, output: str | os.PathLike[str] | None = None) -> str:
    """The writer used when none is named: parquet for an output named ``*.parquet`` (rather
    than JSON Lines under that name); else ShareGPT input (``--from sharegpt`` or an alias)
    stays ShareGPT, and the rest is messages, ``auto`` included, whose records may mix formats.
    An unknown input format is left to its reader to refuse."""
    if output is not None and os.fspath(output).lower().endswith(".parquet"):
        return "parquet"
    cls = _REGISTRY.get(input_format)
    return "sharegpt" if cls is not None and cls.name == "sharegpt" else "messages"


# ---------------------------------------------------------------------- describing and detecting


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """One row of ``convkit formats``."""

    name: str
    aliases: tuple[str, ...]
    reads: bool
    writes: bool
    description: str
    recognises: str
    options: tuple[Option, ...]


def describe() -> list[FormatInfo]:
    """Every registered format, by name: what it reads or writes, recognises, and its options."""
    rows = []
    for n in format_names():
        c = _REGISTRY[n]
        rows.append(
            FormatInfo(
                n,
                c.aliases,
                c.can_read(),
                c.can_write(),
                c.description,
                (c.recognises or c.description) if c.can_read() else "",
                c.options,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Detection:
    """What ``--from auto`` makes of one record.

    ``name`` is the reader chosen (None when none recognises the record), ``why`` says why in
    words, ``also`` names the other readers that would have accepted it (passed over because
    ``name`` comes first in detection order).
    """

    name: str | None
    why: str
    also: tuple[str, ...] = ()


_ORDER: list[str] = []


def detection_order() -> list[str]:
    """Reader names in the order ``--from auto`` asks them."""
    if not _ORDER:  # computed once; register() clears it
        names = format_names(readable=True)
        _ORDER.extend(sorted(names, key=lambda n: (_REGISTRY[n].detect_priority, n)))
    return list(_ORDER)


_DETECTORS: dict[str, Format] = {}


def _detector(name: str) -> Format:
    # Detection needs no options; one default instance per format serves every record.
    fmt = _DETECTORS.get(name)
    if fmt is None:
        fmt = _DETECTORS[name] = _REGISTRY[name]()
    return fmt


def detect_record(record: Any) -> Detection:
    """Which reader ``--from auto`` would use for ``record``, and why (for ``convkit detect``)."""
    found: list[tuple[str, str]] = []
    detection_order()
    for n in _ORDER:
        why = _detector(n).recognise(record)
        if why is not None:
            found.append((n, why))
    if not found:
        return Detection(None, f"no reader recognises {_shape(record)}{_near_miss(record)}")
    return Detection(found[0][0], found[0][1], tuple(n for n, _ in found[1:]))


def detect_name(record: Any) -> str | None:
    """The reader ``--from auto`` would use for ``record`` (first match only: the fast path)."""
    detection_order()
    for n in _ORDER:
        if _detector(n).recognise(record) is not None:
            return n
    return None


def detect_format(record: Any) -> Format | None:
    """The first registered format, in detection order, whose ``detect`` accepts the record."""
    n = detect_name(record)
    return None if n is None else _REGISTRY[n]()


def detect_records(records: Iterable[Any]) -> Iterator[tuple[Any, Detection | None]]:
    """Each raw record with its :class:`Detection` (None for an undecodable ``BadRecord``)."""
    for rec in records:
        value = getattr(rec, "value", _MISSING)
        yield rec, (None if value is _MISSING else detect_record(value))


def _near_miss(record: Any) -> str:
    """Why the first reader whose keys the record has refuses it ("; as alpaca: expected
    "output" to be a string, got null"), or nothing."""
    if not isinstance(record, dict):
        return ""
    for n in _ORDER:
        fmt = _detector(n)
        if not fmt.claims or not all(k in record for k in fmt.claims):
            continue
        try:
            for _ in fmt.read(record, Source("", 0)):
                pass
        except RecordRejected as e:
            return f"; as {n}: {e.message}"
        return ""  # read without complaint: the reason is elsewhere, say nothing
    return ""


def _shape(record: Any) -> str:
    """A short description of a record's shape for "nothing recognises it" messages."""
    if isinstance(record, dict):
        keys = list(record)
        shown = ", ".join(f'"{k}"' for k in keys[:8])
        more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
        return f"an object with keys {shown}{more}" if keys else "an empty object"
    return f"a JSON {type_name(record)}"
