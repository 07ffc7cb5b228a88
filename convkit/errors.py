"""The exception hierarchy: bad data is an InputError, bad options a ConfigError, an output
that cannot be written an OutputError."""

from __future__ import annotations


class ConvkitError(Exception):
    """Base class of every error convkit raises on purpose."""


class ConfigError(ConvkitError, ValueError):
    """An option or argument that cannot work (unknown name, impossible limit, missing file)."""


class InputError(ConvkitError, ValueError):
    """Input data that cannot be read, with where it is: file, line or record, and field.

    The message reads ``<what was wrong> — at <file> line <n>`` (or ``record <i>``,
    ``byte <offset>``), so that one line on stderr is enough to find the problem.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        record: int | None = None,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.line = line
        self.record = record
        self.offset = offset
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        msg = self.reason
        if self.field is not None:
            msg = f"{msg} (field {self.field!r})"
        if where:
            msg = f"{msg} — at {' '.join(where)}"
        return msg


class OutputError(ConvkitError, OSError):
    """An output that cannot be written (disk full, an I/O error), with its name."""

    def __init__(self, path: str, error: OSError) -> None:
        self.path = path
        shown = "standard output" if path == "-" else path
        super().__init__(error.errno, f"cannot write {shown}: {error.strerror or error}")

    def __str__(self) -> str:
        return str(self.strerror)
