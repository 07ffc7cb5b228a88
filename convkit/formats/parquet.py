"""Parquet output (the ``parquet`` extra: ``pip install 'convkit[parquet]'``).

One row per conversation, in a fixed schema so that every row group agrees:

* ``id``: string
* ``messages``: list of ``{role: string, content: string, extra: string}``, where ``extra`` is
  the turn's other keys (``tool_calls``, ``name``, content parts, ...) as a JSON object, or null
* ``meta``: the conversation's metadata as a JSON object, or null

The file is written beside its final name and renamed into place on success, like every output
of convkit; rows are written in row groups of ``row_group_size`` (a writer option).
"""

from __future__ import annotations

import errno
import os
from typing import Any, ClassVar

from ..errors import ConfigError, OutputError
from ..io import (
    Transactional,
    compression_of,
    discard_temporary,
    dumps,
    forget_temporary,
    has_lone_surrogate,
    is_special_file,
    new_temporary,
    set_default_mode,
)
from ..model import Conversation
from .base import Format, Option, RecordRejected, register
from .messages import message_dict

INSTALL_HINT = (
    "writing parquet needs pyarrow: pip install 'convkit[parquet]' (or pip install pyarrow)"
)


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return pa, pq


def schema() -> Any:
    """The Arrow schema of convkit's parquet output."""
    pa, _ = _pyarrow()
    message = pa.struct([("role", pa.string()), ("content", pa.string()), ("extra", pa.string())])
    return pa.schema([("id", pa.string()), ("messages", pa.list_(message)), ("meta", pa.string())])


def _json(value: Any) -> str | None:
    # dumps writes a lone surrogate as its escape, which parquet stores as text.
    return dumps(value).decode("utf-8") if value else None


#: The reason of a conversation whose text parquet cannot store.
UNSTORABLE = "unstorable_text"


def _storable(text: str, where: str) -> str:
    """``text``, if parquet can store it: a lone surrogate (read from a JSON ``\\ud800``
    escape, which JSON outputs write back as such) has no UTF-8, and would stop the run."""
    if has_lone_surrogate(text):
        raise RecordRejected(
            UNSTORABLE,
            f"{where} holds a lone surrogate (read from a JSON \\ud800 escape), which "
            "parquet cannot store; a JSON output keeps it",
            where,
        )
    return text


@register
class Parquet(Format):
    name = "parquet"
    description = "Parquet rows: id, messages [{role, content, extra}], meta (JSON); an extra"
    reasons: ClassVar[dict[str, str]] = {
        UNSTORABLE: "a text holds a lone surrogate (a JSON \\ud800 escape), which parquet "
        "cannot store (parquet writer)",
    }
    options = (
        Option("row_group_size", int, 1000, "rows per parquet row group", side="write", minimum=1),
    )

    def write(self, conv: Conversation) -> dict[str, Any]:
        messages = []
        for i, t in enumerate(conv.turns):
            # As the messages writer writes it: the role as read ("developer", "function").
            m = message_dict(t)
            extra = {k: v for k, v in m.items() if k not in ("role", "content")}
            content = m["content"]
            if not isinstance(content, str):  # content parts: the list goes to extra
                extra["content"] = content
                content = t.content
            messages.append(
                {
                    "role": m["role"],
                    "content": _storable(content, f"messages[{i}].content"),
                    "extra": _json(extra),
                }
            )
        return {"id": _storable(conv.id, "id"), "messages": messages, "meta": _json(conv.meta)}

    def open_sink(self, path: str | os.PathLike[str]) -> ParquetSink:
        return ParquetSink(path, row_group_size=self.opt["row_group_size"])


class ParquetSink(Transactional):
    """Writes the rows of :meth:`Parquet.write` to a parquet file, atomically."""

    def __init__(self, path: str | os.PathLike[str], *, row_group_size: int = 1000) -> None:
        pa, pq = _pyarrow()
        self.path = os.fspath(path)
        if self.path == "-":
            raise ConfigError("parquet output needs a file name, not stdout")
        if compression_of(self.path) is not None:
            raise ConfigError(
                f"parquet output is not compressed as a whole (parquet compresses its columns): "
                f"name it without {os.path.splitext(self.path)[1]}: {self.path}"
            )
        # As AtomicFile: through a symbolic link its target is replaced; a device or pipe is
        # written in place.
        self._target = os.path.realpath(self.path)
        directory = os.path.dirname(self._target)
        if not os.path.isdir(directory):
            raise ConfigError(f"output directory does not exist: {directory}")
        self.count = 0
        self._pa = pa
        self._schema = schema()
        self._size = row_group_size
        self._rows: list[dict[str, Any]] = []
        self._tmp: str | None = None
        try:
            if is_special_file(self.path):
                self._writer: Any = pq.ParquetWriter(self.path, self._schema)
                return
            fd, self._tmp = new_temporary(self._target)
            os.close(fd)
            self._writer = pq.ParquetWriter(self._tmp, self._schema)
        except OSError as e:
            self._writer = None
            self._remove_temporary()
            raise OutputError(self.path, e) from None

    def write(self, obj: dict[str, Any]) -> None:
        self._rows.append(obj)
        self.count += 1
        if len(self._rows) >= self._size:
            try:
                self._flush()
            except OSError as e:
                raise OutputError(self.path, e) from None

    def _flush(self) -> None:
        if self._rows:
            try:
                table = self._pa.Table.from_pylist(self._rows, schema=self._schema)
            except UnicodeEncodeError:
                # A lone surrogate, read from a \ud800 escape: JSON keeps it, parquet cannot.
                raise OutputError(
                    self.path,
                    OSError(errno.EILSEQ, "a string holds a lone surrogate (read from a JSON "
                            "\\ud800 escape), which parquet cannot store; write JSON instead"),
                ) from None
            self._writer.write_table(table)
            self._rows = []

    def prepare(self) -> None:
        """Write the last rows and close the file; :meth:`commit` renames it."""
        if self._writer is None:
            return
        try:
            self._flush()
            self._writer.close()
            self._writer = None
            if self._tmp is not None:
                set_default_mode(self._tmp)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError) and not isinstance(e, OutputError):
                raise OutputError(self.path, e) from None
            raise

    def commit(self) -> None:
        self.prepare()
        if self._tmp is None:
            return
        try:
            os.replace(self._tmp, self._target)
        except OSError as e:
            self._remove_temporary()
            raise OutputError(self.path, e) from None
        forget_temporary(self._tmp)
        self._tmp = None

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        except OSError:
            pass  # what it still held is thrown away
        finally:
            self._writer = None
            self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._tmp is not None:
            discard_temporary(self._tmp)
            self._tmp = None

