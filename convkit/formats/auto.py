"""``--from auto``: detect the format of each record and read it with that reader.

Options given to ``get_format("auto", **options)`` go to every reader that declares them (so
``fewshot=2`` reaches both task-file readers); an option no reader declares is a
:class:`~convkit.errors.ConfigError`.

The stream is cut into runs of consecutive records of one file that the same reader recognises,
and each run goes through that reader's ``read_stream``: a stateful reader (flat OASST rows)
sees its records together and finishes its state at the end of the run. An undecodable
``BadRecord`` joins the run it is in, so that it does not cut a tree in two, and so does a record
no reader recognises inside a run of OASST rows (the OASST reader rejects it alone). Elsewhere
a record no reader recognises is rejected with reason ``unknown_format`` and a message naming
its keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from ..errors import ConfigError
from ..model import Conversation, Source
from .base import (
    Format,
    RecordRejected,
    Rejection,
    detect_name,
    detect_record,
    format_class,
    format_names,
)

_MISSING = object()
#: The reader whose records must be read together (flat OASST rows make trees).
STATEFUL_RUN = "oasst"


class AutoFormat(Format):
    """A reader that picks, per record, the reader ``detect_record`` names."""

    name = "auto"
    description = "detects the format of each record"
    # Some run may be flat OASST rows. Per-record read() works for every other layout.
    stateful = True

    def __init__(self, **options: Any) -> None:
        readers = [format_class(n) for n in format_names(readable=True)]
        self._per_format: dict[str, dict[str, Any]] = {c.name: {} for c in readers}
        for key, value in options.items():
            takers = [
                c for c in readers if any(o.name == key and o.side == "read" for o in c.options)
            ]
            if not takers:
                raise ConfigError(f"unknown option {key!r}: no reader declares it")
            for c in takers:
                self._per_format[c.name][key] = value
        self.opt = dict(options)
        self._formats: dict[str, Format] = {}
        # Build the readers that were given options now, so that a bad value fails at once.
        for n, opts in self._per_format.items():
            if opts:
                self._reader(n)

    def _reader(self, name: str) -> Format:
        fmt = self._formats.get(name)
        if fmt is None:
            fmt = self._formats[name] = format_class(name)(**self._per_format.get(name, {}))
        return fmt

    def recognise(self, record: Any) -> str | None:
        d = detect_record(record)
        return None if d.name is None else f"{d.name}: {d.why}"

    def read(self, record: Any, source: Source) -> Iterator[Conversation | Rejection]:
        name = detect_name(record)
        if name is None:
            raise RecordRejected("unknown_format", detect_record(record).why)
        yield from self._reader(name).read(record, source)

    def read_stream(self, records: Iterable[Any]) -> Iterator[Any]:
        def tagged() -> Iterator[tuple[Any, Any]]:
            key: tuple[str, str | None] | None = None
            for rec in records:
                value = getattr(rec, "value", _MISSING)
                if value is not _MISSING:
                    name = detect_name(value)
                    if name is None and key is not None and key == (rec.file, STATEFUL_RUN):
                        # A broken row inside flat OASST rows (an id of the wrong type, say)
                        # stays in their run, where the reader rejects it alone: cutting the
                        # run there would cut the tree in two.
                        name = STATEFUL_RUN
                    key = (rec.file, name)
                yield key, rec

        for key, run in groupby(tagged(), key=lambda kr: kr[0]):
            recs = (rec for _, rec in run)
            name = key[1] if key is not None else None
            if name is None:
                for rec in recs:
                    value = getattr(rec, "value", _MISSING)
                    if value is _MISSING:
                        yield rec
                    else:
                        source = Source(rec.file, rec.index, rec.line)
                        yield Rejection(
                            "unknown_format", detect_record(value).why, source, raw=value
                        )
            else:
                yield from self._reader(name).read_stream(recs)
