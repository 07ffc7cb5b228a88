"""The format protocol: a reader turns one raw record into conversations, a writer the reverse.

Formats register themselves by name; the CLI takes its ``--from`` and ``--to`` choices from the
registry, so adding a dataset format is one new module here plus its tests.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from ..errors import ConfigError
from ..model import Conversation, Source


class RecordRejected(Exception):
    """A record of the wrong shape: carries a snake_case reason and a message saying where.

    Raised by readers; the pipeline turns it into a rejects line, never into a crash.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.field = field
        super().__init__(message)


def type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    return {
        dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"
    }.get(type(value), type(value).__name__)


class Format:
    """Base class of dataset formats. Subclasses set ``name`` and implement what they support."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def detect(self, record: Any) -> bool:
        """True when ``record`` has this format's shape (used by ``--from auto``)."""
        return False

    def read(self, record: Any, source: Source) -> Iterator[Conversation]:
        """Conversations made from one raw record; raise :class:`RecordRejected` for a bad one."""
        raise ConfigError(f"format {self.name!r} cannot be read")

    def write(self, conv: Conversation) -> dict[str, Any]:
        """The output record of one conversation."""
        raise ConfigError(f"format {self.name!r} cannot be written")

    @classmethod
    def can_read(cls) -> bool:
        return cls.read is not Format.read

    @classmethod
    def can_write(cls) -> bool:
        return cls.write is not Format.write


_REGISTRY: dict[str, type[Format]] = {}


def register(cls: type[Format]) -> type[Format]:
    """Class decorator adding a format to the registry under its name and aliases."""
    for key in (cls.name, *cls.aliases):
        if key in _REGISTRY:
            raise RuntimeError(f"format name {key!r} registered twice")
        _REGISTRY[key] = cls
    return cls


def get_format(name: str) -> Format:
    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(sorted(n for n, c in _REGISTRY.items() if c.name == n))
        raise ConfigError(f"unknown format {name!r}; known formats: {known}") from None


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


def detect_format(record: Any) -> Format | None:
    """The first registered format, in name order, whose ``detect`` accepts the record."""
    for n in format_names(readable=True):
        fmt = _REGISTRY[n]()
        if fmt.detect(record):
            return fmt
    return None
