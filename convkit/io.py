"""Streaming readers (JSON array, JSON Lines; plain, .gz or .zst; files or stdin) and atomic writers.

Readers never hold more than one record plus one read chunk in memory, so a 600 MB ShareGPT
array costs as much memory as its largest record. Writers write to a temporary file beside the
target and rename it into place only when the whole output is written.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import itertools
import json
import math
import os
import re
import secrets
import stat
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, TypeVar

import orjson

from .errors import ConfigError, InputError, OutputError
from .scan import count_newlines, element_end, has_long_number

CHUNK = 1 << 20  # bytes read at a time; also the granularity at which the array buffer is trimmed

_T = TypeVar("_T", bound="Transactional")
_R = TypeVar("_R")


def _finite(text: str) -> float | None:
    # 1e400 overflows to infinity, which JSON cannot write: null, as NaN and Infinity are.
    value = float(text)
    return value if math.isfinite(value) else None


# What orjson refuses is read by this decoder: NaN, Infinity and numbers beyond a double's range
# are read as null (orjson writes them so), so that no writer ever puts them in its output.
_decoder = json.JSONDecoder(parse_constant=lambda _: None, parse_float=_finite)
_WS = " \t\n\r"
_BWS = b" \t\n\r"
_BWS_CODES = frozenset(_BWS)
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawRecord:
    """One record as read: the decoded JSON value and where it was."""

    file: str
    index: int  # 0-based position among the records of this input
    line: int | None  # 1-based line where the record starts
    value: Any


@dataclass(slots=True)
class BadRecord:
    """A record that could not be decoded, yielded instead of raising when ``on_error='skip'``.

    ``resumable`` is False when the reader had to give up on the rest of the input (a broken
    JSON array cannot be re-synchronised), in which case later records of that file are lost and
    the error message says so.
    """

    file: str
    index: int
    line: int | None
    error: InputError
    text: str
    resumable: bool = True


def display_name(path: str | os.PathLike[str]) -> str:
    return "<stdin>" if str(path) == "-" else os.fspath(path)


# Compressed inputs, by name and by their first bytes (no JSON text starts with any of these).
_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".xz": "xz"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"),
          (b"\xfd7zXZ\x00", "xz"))


def open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """Open an input for reading bytes, decompressed: gzip, zstd, bzip2 and xz, by the name's
    suffix (``.gz``, ``.zst``, ``.bz2``, ``.xz``), or else by the first bytes (standard input
    piped from ``zcat``'s absence, a file named otherwise)."""
    p = os.fspath(path)
    if p == "-":
        raw: BinaryIO = sys.stdin.buffer
    else:
        if os.path.isdir(p):
            raise ConfigError(f"input is a directory, not a file: {p}")
        if not os.path.exists(p):
            raise ConfigError(f"input file not found: {p}")
        raw = open(p, "rb")  # noqa: SIM115 - closed by the caller, or by the decompressor
    kind = compression_of(p)
    if kind is None:
        head = raw.read(6)  # blocks until 6 bytes or the end, as a pipe delivers them
        kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
        raw = _Prefixed(head, raw)  # type: ignore[assignment]
    if kind is None:
        return raw
    try:
        return _Decompressed(_decompressor(raw, kind, p), raw)  # type: ignore[return-value]
    except BaseException:
        close_input(raw)
        raise


def close_input(stream: Any) -> None:
    """Close an input stream, unless it is standard input: that belongs to the process."""
    if stream is not sys.stdin.buffer:
        stream.close()


def _decompressor(raw: BinaryIO, kind: str, name: str) -> Any:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        import bz2

        return bz2.BZ2File(raw)
    if kind == "xz":
        try:
            import lzma
        except ImportError:  # pragma: no cover - a Python built without liblzma
            raise ConfigError(f"reading {name} needs Python's lzma module") from None
        return lzma.LZMAFile(raw)
    try:
        import zstandard
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigError(f"reading {name} needs zstandard: pip install 'convkit[zstd]'") from None
    return _ZstdReader(raw, zstandard)


class _Decompressed:
    """A decompressor over a byte stream; closing it closes the stream too (not stdin)."""

    def __init__(self, reader: Any, raw: BinaryIO) -> None:
        self.read = reader.read
        self.read1 = getattr(reader, "read1", reader.read)  # see _byte_chunks
        self._reader = reader
        self._raw = raw

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            close_input(self._raw)


class _Prefixed:
    """A byte stream whose first bytes were read ahead to sniff them."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._raw.read(size)
        if 0 <= size < len(self._head):
            head, self._head = self._head[:size], self._head[size:]
            return head
        head, self._head = self._head, b""
        return head + self._raw.read(-1 if size < 0 else size - len(head))

    def close(self) -> None:
        close_input(self._raw)


class _ZstdReader:
    """The decompressed bytes of a ``.zst`` file (one frame or several in a row). A file that
    ends inside a frame is an error: zstandard's stream reader returns what it has, silently,
    and a truncated download would pass for a shorter dataset."""

    def __init__(self, raw: BinaryIO, zstandard: Any) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._error = zstandard.ZstdError
        self._frame: Any = None  # the frame being decompressed

    def read(self, size: int = -1) -> bytes:
        """At least one byte of output unless the input has ended (``size`` is a hint)."""
        while True:
            data = self._raw.read(size if size > 0 else CHUNK)
            if not data:
                if self._frame is not None and not self._frame.eof:
                    raise EOFError("the input ends in the middle of a zstd frame (truncated?)")
                return b""
            out = []
            try:
                while data:
                    if self._frame is None or self._frame.eof:
                        self._frame = self._dctx.decompressobj()
                    out.append(self._frame.decompress(data))
                    data = self._frame.unused_data if self._frame.eof else b""
            except self._error as e:
                raise OSError(f"not valid zstd data: {e}") from None
            if any(out):
                return b"".join(out)

    def close(self) -> None:
        pass  # the stream is _Decompressed's to close


try:
    from lzma import LZMAError as _LZMAError
except ImportError:  # pragma: no cover - a Python built without liblzma

    class _LZMAError(Exception):  # type: ignore[no-redef]
        pass


def _byte_chunks(
    stream: BinaryIO, path: str, failed: list[InputError] | None = None
) -> Iterator[bytes]:
    """The raw chunks of a byte stream, with read errors of compressed input located; with
    ``failed``, such an error ends the chunks (after the bytes read before it) and is put there
    instead of raised."""
    # read1 reads the compressed stream once at most: a read that fails part way (the file
    # ends early) then loses nothing it had decompressed, where read(n) drops its pieces. Each
    # call asks for a whole chunk: bz2's reader can lose output it holds when asked for less.
    read = getattr(stream, "read1", stream.read)
    while True:
        parts: list[bytes] = []
        got = 0
        try:
            while got < CHUNK:
                data = read(CHUNK)
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except (OSError, EOFError, _LZMAError, zlib.error) as e:  # BadGzipFile is an OSError
            err = InputError(f"cannot read compressed input: {e}", file=path)
            if failed is None:
                raise err from None
            if parts:
                yield b"".join(parts)
            failed.append(err)
            return
        if not parts:
            return
        yield parts[0] if len(parts) == 1 else b"".join(parts)


def _until_unreadable(
    name: str, records: Iterator[RawRecord | BadRecord], failed: list[InputError], on_error: str
) -> Iterator[RawRecord | BadRecord]:
    """The records of a compressed input whose decompression may fail part way (a download
    cut short, a damaged file): what came before is kept, as a plain file cut there reads.
    When the reader's last record is bad (the one the bytes end in, or one broken anyway) its
    error gains the decompressor's, and nothing after it can be read; else the decompressor's
    error, at the record after the last, ends the input (raised, or with ``on_error='skip'``
    a bad record that ends it). One record is held back, to be that last one."""
    last: RawRecord | BadRecord | None = None
    try:
        for rec in records:
            if last is not None:
                yield last
            last = rec
    except InputError as e:  # on_error="fail"
        if last is not None:
            yield last
        if not failed:
            raise
        raise _with_cause(e, failed[0]) from None
    if isinstance(last, BadRecord) and failed:
        err = _with_cause(last.error, failed[0])
        yield BadRecord(last.file, last.index, last.line, err, last.text, resumable=False)
        return
    if last is not None:
        yield last
    if not failed:
        return
    index = 0 if last is None else last.index + 1
    err = InputError(failed[0].reason, file=name, record=index)
    if on_error == "fail":
        raise err
    yield BadRecord(name, index, None, err, "", resumable=False)


def _with_cause(err: InputError, failed: InputError) -> InputError:
    """``err`` (the reader's, where it is) with the decompressor's error after it."""
    return InputError(
        f"{err.reason}; {failed.reason}",
        file=err.file,
        line=err.line,
        record=err.record,
        offset=err.offset,
        field=err.field,
    )


_NOT_UTF8 = "input is not valid UTF-8"


def _chunks(raw: Iterator[bytes]) -> Iterator[str]:
    """Decoded text chunks of byte chunks (UTF-8, from within the input: no BOM). A byte that
    is not UTF-8 is decoded to a lone surrogate (``surrogateescape``): valid UTF-8 never decodes
    to one, so the text reader knows each such character for a bad byte, and steps over it."""
    dec = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    while True:
        data = next(raw, b"")
        text = dec.decode(data, final=not data)
        if text:
            yield text
        if not data:
            return


# What _chunks made of the bytes that are not UTF-8.
_BAD_BYTE = re.compile("[\udc80-\udcff]")
# The rest of a token that a syntax error points at: up to a delimiter.
_TOKEN_END = re.compile(r'[\s,\[\]{}:"]')


# A top-level number or literal, as the byte reader's _SCALAR takes it.
_TEXT_SCALAR = re.compile(r'[^ \t\n\r\f\v,\[\]{}"]+')  # bytes' \s: ASCII white space only


def _bad_element_end(buf: str, pos: int) -> int:
    """Where the array element at ``pos`` (an object, array or string) ends, when its brackets
    close in ``buf`` (found as the byte reader finds them) and it holds bytes that are not
    UTF-8; -1 when it closes without any; -2 when it has not closed in ``buf`` yet."""
    data = buf[pos:].encode("utf-8", "surrogateescape")
    stop = element_end(data, 0, 0, False)[0]
    if stop < 0:
        return -2
    length = len(data[:stop].decode("utf-8", "surrogateescape"))
    return pos + length if _BAD_BYTE.search(buf, pos, pos + length) else -1


def _shown(text: str) -> str:
    """``text`` for a rejects line: each bad byte as U+FFFD, as the other readers show them."""
    if _BAD_BYTE.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def read_records(
    path: str | os.PathLike[str], *, on_error: str = "fail"
) -> Iterator[RawRecord | BadRecord]:
    """Yield the records of one input: the elements of a top-level JSON array, or JSON Lines.

    The layout is sniffed from the first non-blank character (``[`` means an array). Malformed
    JSON raises :class:`InputError` naming the file and line (and byte offset for arrays); with
    ``on_error='skip'`` a :class:`BadRecord` is yielded instead and reading goes on.
    """
    if on_error not in ("fail", "skip"):
        raise ConfigError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    name = display_name(path)
    stream = open_binary(path)
    # A compressed input may stop decompressing part way: see _until_unreadable.
    failed: list[InputError] | None = [] if isinstance(stream, _Decompressed) else None
    try:
        raw = _byte_chunks(stream, name, failed)
        head = b""
        for data in raw:
            head += data
            if head.lstrip(_BWS).removeprefix(_BOM).lstrip(_BWS):
                break
        stripped = head.lstrip(_BWS).removeprefix(_BOM).lstrip(_BWS)
        if not stripped:
            if failed:
                raise failed[0]
            return
        records: Iterator[RawRecord | BadRecord]
        if stripped[:1] == b"[":
            body = head.removeprefix(_BOM)
            records = _read_array_bytes(name, body, raw, on_error, len(head) - len(body))
        else:
            # JSON Lines stay bytes: orjson parses UTF-8 directly, which saves decoding and
            # copying every line once more.
            bom = len(_BOM) if head.startswith(_BOM) else 0  # offsets count it: it is in the file
            records = _read_lines(name, head[bom:], raw, on_error, offset=bom)
        yield from records if failed is None else _until_unreadable(name, records, failed, on_error)
    finally:
        close_input(stream)


def _read_lines(
    name: str,
    head: bytes,
    chunks: Iterator[bytes],
    on_error: str,
    index: int = 0,
    lineno: int = 0,
    offset: int = 0,  # byte offset of the next line
) -> Iterator[RawRecord | BadRecord]:
    pending: list[bytes] = []  # the pieces of a line not ended yet (joined once, not per chunk)
    orjson_loads = orjson.loads
    for data in itertools.chain((head,), chunks, (None,)):
        lines: list[bytes | memoryview]
        if data is not None:
            nl = data.find(b"\n")
            if nl < 0:
                pending.append(data)
                continue
            # Lines inside the chunk are views of it, found with find (memchr): bytes.split
            # scans byte by byte and copies every line, a tenth of a plain conversion's time.
            view = memoryview(data)
            if pending:
                pending.append(data[:nl])
                lines = [b"".join(pending)]
            else:
                lines = [view[:nl]]
            find = data.find
            i = nl + 1
            j = find(b"\n", i)
            while j >= 0:
                lines.append(view[i:j])
                i = j + 1
                j = find(b"\n", i)
            pending = [data[i:]] if i < len(data) else []
        else:  # end of input: whatever is left is the last line
            last = b"".join(pending)
            lines = [last] if last else []
        for k, line in enumerate(lines):
            lineno += 1
            start = offset
            offset += len(line) + 1
            if not line or (line[0] in _BWS_CODES and not bytes(line).strip(_BWS)):
                continue  # a blank line (tested without copying a line that starts with "{")
            try:
                # orjson turns an integer beyond 64 bits into a float: a line with a long run
                # of digits goes to the standard decoder, and so does one orjson refuses.
                if has_long_number(line):
                    value = _standard_loads(line, name, start, lineno)
                else:
                    try:
                        value = orjson_loads(line)
                    except orjson.JSONDecodeError:
                        value = _standard_loads(line, name, start, lineno)
            except (ValueError, InputError) as e:  # JSONDecodeError is a ValueError
                after = None  # with a broken first line: the JSON Lines that follow it
                if isinstance(e, json.JSONDecodeError):
                    if index == 0 and bytes(line).lstrip(_BWS).startswith(b"{"):
                        # Not JSON Lines but one pretty-printed object (a task file, say):
                        # such files are documents, small enough to decode whole.
                        rest = b"\n".join(lines[k:])
                        if data is not None:
                            rest += b"\n" + b"".join(pending)
                        whole = rest + b"".join(chunks)
                        after = whole[len(line) + 1 :]
                        if not _next_line_is_a_record(after):
                            try:
                                document = _read_document(name, whole, lineno, start)
                            except InputError as bad:
                                if on_error == "fail":
                                    raise
                                # A broken document is one broken record.
                                text = str(whole, "utf-8", "replace")
                                yield BadRecord(name, index, lineno, bad, text)
                                return
                            yield document
                            return
                    err = InputError(
                        f"malformed JSON: {_said(e)} (column {e.colno})", file=name, line=lineno
                    )
                elif isinstance(e, InputError):
                    err = e
                else:
                    err = InputError(_number_error(e) or str(e), file=name, line=lineno)
                if on_error == "fail":
                    raise err from None
                yield BadRecord(name, index, lineno, err, str(line, "utf-8", "replace"))
                if after is not None:
                    # JSON Lines after all, whose first line alone is bad; the rest is read.
                    yield from _read_lines(
                        name, after, iter(()), on_error, index + 1, lineno, offset
                    )
                    return
            else:
                yield RawRecord(name, index, lineno, value)
            index += 1


def _next_line_is_a_record(data: bytes) -> bool:
    """Whether the lines after a broken first line are JSON Lines records, not the rest of a
    pretty-printed document.

    The first non-blank line decides: a record is an object alone on its line, whole (nothing
    after its closing brace: a document's element is followed by a comma or by the brackets
    that close it, ``{...}]}``), or, when it cannot be decoded at all (broken too), one that
    starts with a brace and does not end with a comma. A document's member
    (``  "Definition": [``) is no record either. When that line is a whole object, the next
    one must not close what the first line opened (``]}``): a one-element array of a document.
    Only closing brackets count there, so that a later odd line (a record broken by a raw new
    line) does not turn JSON Lines into a document.
    """
    lines = (line.strip(_BWS) for line in data.split(b"\n", 40)[:40])
    first = next((line for line in lines if line), b"")
    if not first.startswith(b"{") or first == b"{":
        return False
    text = first.decode("utf-8", "replace")
    try:
        value, end = _decoder.raw_decode(text)
    except ValueError:  # broken (the standard decoder takes NaN): a record unless an element
        return not first.endswith(b",")
    if not isinstance(value, dict) or end != len(text):
        return False
    following = next((line for line in lines if line), b"")
    return not following.startswith((b"]", b"}"))


def _read_document(name: str, data: bytes, first_line: int, offset: int) -> RawRecord:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("input is not valid UTF-8", file=name, offset=offset + e.start) from None
    try:
        value = _json_loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"malformed JSON: {_said(e)} (column {e.colno})", file=name, line=first_line - 1 + e.lineno
        ) from None
    except ValueError as e:
        raise InputError(_number_error(e) or str(e), file=name, line=first_line) from None
    return RawRecord(name, 0, first_line, value)


def _number_error(e: ValueError) -> str | None:
    """The wording for a ValueError that is not a syntax or encoding error: an integer longer
    than Python decodes (``sys.get_int_max_str_digits``), or nesting deeper than it recurses;
    None for the others."""
    if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
        return None
    if isinstance(e, _TooDeep):
        return str(e)
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
    return f"a number of more than {limit} digits, longer than Python decodes"


def _said(e: json.JSONDecodeError) -> str:
    """The decoder's message without its trailing " at" ("Unterminated string starting at"),
    which it writes to be followed by a position: ours follows, worded."""
    return e.msg.removesuffix(" at")


class _TooDeep(ValueError):
    """JSON nested deeper than the standard decoder recurses: like a number too long to
    decode, the element is whole and well delimited, so it is rejected alone."""


_TOO_DEEP = "arrays and objects nested too deeply to decode (more than about 2,000 levels)"

# orjson reads arrays and objects nested up to 1,024 levels deep and writes up to 254; the json
# module, which takes over for the rest, recurses once a level against Python's recursion limit
# (1,000 frames, fewer in a deep call stack). On a RecursionError it runs again with room for
# this many levels more (about 2,000 in all; encoding gets twice the room), so that whatever is
# read can be written, and read back.
_JSON_DEPTH = 1024 + 64
_deep_lock = threading.Lock()


def _deep(call: Callable[..., _R], *args: Any, room: int = _JSON_DEPTH, **kwargs: Any) -> _R:
    """``call(*args, **kwargs)`` of the json module, with ``room`` for nesting (orjson's limit);
    :class:`_TooDeep` beyond it (a RecursionError would end the run with a traceback)."""
    try:
        return call(*args, **kwargs)
    except RecursionError:
        pass
    # Under a lock: two threads raising and restoring the limit in turn could leave it raised.
    with _deep_lock:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(old + room)
        try:
            return call(*args, **kwargs)
        except RecursionError:
            raise _TooDeep(_TOO_DEEP) from None
        finally:
            sys.setrecursionlimit(old)


def _json_loads(text: str) -> Any:
    return _deep(_decoder.decode, text)


def _raw_decode(text: str, pos: int) -> tuple[Any, int]:
    """The value starting at ``pos``, and where it ends."""
    return _deep(_decoder.raw_decode, text, pos)


def _standard_loads(line: bytes | memoryview, name: str, offset: int, lineno: int) -> Any:
    """A line decoded by the json module. orjson refuses what the JSON module accepts (NaN,
    lone surrogates) and its messages differ: the standard decoder decides and words the error."""
    try:
        text = str(line, "utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            "input is not valid UTF-8", file=name, line=lineno, offset=offset + e.start
        ) from None
    return _json_loads(text)


# A top-level scalar element (number, true, false, null): what runs up to a delimiter.
_SCALAR = re.compile(rb"[^\s,\[\]{}\"]+")
# Chunks an array element may span before the text reader takes over (see _read_array_bytes).
_ELEMENT_LIMIT = 8
_BWS_SET = frozenset(_BWS)


def _read_array_bytes(
    name: str, head: bytes, raw: Iterator[bytes], on_error: str, skipped: int = 0
) -> Iterator[RawRecord | BadRecord]:
    """The elements of a JSON array, found as byte ranges and decoded by orjson one by one.

    This is the fast path for well-formed input. At the first thing it cannot decode (bad
    JSON, invalid UTF-8, a truncated file, data after the array) it hands the rest of the
    input, from the start of that element, to :func:`_read_array`, which decodes text with
    the standard decoder and words the error exactly, with its line and byte. ``skipped``:
    bytes of the input before ``head`` (a byte order mark).
    """
    buf = bytearray(head)
    pos = buf.index(b"[") + 1
    eof = False
    index = 0
    expect_comma = False
    comma_at = -1  # where the comma before the next element is, until one comes
    lines_before = 0  # newlines in bytes already dropped from the buffer
    bytes_before = skipped  # bytes of the input before the buffer
    line_at = 1  # line number at buffer position counted_to
    counted_to = 0

    def more() -> bool:
        nonlocal eof
        if eof:
            return False
        data = next(raw, b"")
        if not data:
            eof = True
            return False
        buf.extend(data)
        return True

    def handoff() -> Iterator[RawRecord | BadRecord]:
        lines = lines_before + count_newlines(buf, 0, pos)
        offset = bytes_before + pos
        chunks = _chunks(itertools.chain((bytes(buf[pos:]),), raw))
        yield from _read_array(
            name,
            "",  # its first read is the text reader's own, where bad bytes are handled
            chunks,
            on_error,
            start=0,
            index=index,
            expect_comma=expect_comma,
            lines_before=lines,
            bytes_before=offset,
        )

    ws = _BWS_SET
    while True:
        while True:
            while pos < len(buf) and buf[pos] in ws:
                pos += 1
            if pos < len(buf) or not more():
                break
        if pos >= len(buf):
            yield from handoff()
            return
        c = buf[pos]
        if c == 0x5D and comma_at >= 0:  # "[{...},]": the text reader words the error
            pos, expect_comma = comma_at, True
            yield from handoff()
            return
        if c == 0x5D:  # ']': the end, if only white space follows (read until it does not)
            seen = pos + 1
            while True:
                if buf[seen:].strip(_BWS):
                    yield from handoff()
                    return
                seen = len(buf)
                if not more():
                    return
        if expect_comma:
            if c != 0x2C:
                yield from handoff()
                return
            comma_at = pos
            pos += 1
            expect_comma = False
            continue
        limit = pos + _ELEMENT_LIMIT * CHUNK
        if c == 0x7B or c == 0x5B or c == 0x22:
            resume, depth, long_number = pos, 0, False
            while True:
                end, resume, depth, long_number = element_end(buf, resume, depth, long_number)
                # An element that has not ended within the limit is read by the text reader:
                # a very long record, or a bracket that never closes (a typo), which must not
                # pull the rest of the input into memory.
                if end >= 0 or len(buf) > limit or not more():
                    break
        else:
            while True:
                m = _SCALAR.match(buf, pos)
                end = m.end() if m else pos
                if end == pos or end < len(buf) or eof or len(buf) > limit or not more():
                    break
            end = end if end > pos and (end < len(buf) or eof) else -1
            long_number = end > 0 and has_long_number(bytes(buf[pos:end]))
        if end < 0:
            yield from handoff()
            return
        try:
            value = _loads_element(bytes(buf[pos:end]), long_number)
        except ValueError as e:  # orjson's and json's errors, UnicodeDecodeError, long integers
            reason = _number_error(e)
            at = bytes_before + pos
            if isinstance(e, UnicodeDecodeError):
                reason, at = "not valid UTF-8", at + e.start
            if reason is None:
                yield from handoff()
                return
            # A whole element the scan delimited: rejected alone, the array goes on.
            line_at += count_newlines(buf, counted_to, pos)
            counted_to = pos
            err = InputError(f"record {index}: {reason}", file=name, line=line_at, offset=at)
            if on_error == "fail":
                raise err from None
            text = str(bytes(buf[pos:end]), "utf-8", "replace")  # the whole element, as JSONL
            yield BadRecord(name, index, line_at, err, text)
        else:
            line_at += count_newlines(buf, counted_to, pos)
            counted_to = pos
            yield RawRecord(name, index, line_at, value)
        index += 1
        # Trimmed after bad records too: a file of them must not gather in memory.
        if end > CHUNK:
            # Up to counted_to (the record's start) the new lines are in line_at already.
            line_at += count_newlines(buf, counted_to, end)
            lines_before = line_at - 1
            bytes_before += end
            del buf[:end]
            end = 0
            counted_to = 0
        pos = end
        expect_comma = True
        comma_at = -1


def trimmed(data: bytes) -> bytes:
    """``data`` (from ``orjson.dumps``) copied into bytes of its own size. orjson returns its
    whole working buffer, several times the text (it reserves room for every string escaped,
    orjson issue 483): a batch of output lines held the memory of five, and a new process
    paid a page fault for each page of it. The copy costs less than the faults it saves."""
    return bytes(memoryview(data))


def loads(data: bytes) -> Any:
    """A JSON document that :func:`dumps` wrote (orjson, or the standard decoder for what
    orjson refuses: integers beyond 64 bits, lone surrogates)."""
    return _loads_element(data, False)


def _loads_element(data: bytes, long_number: bool) -> Any:
    # orjson turns an integer beyond 64 bits into a float; with a long run of digits outside
    # strings the standard decoder decides, and it also takes what orjson refuses (NaN,
    # Infinity, lone surrogates).
    if not long_number:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return _json_loads(data.decode("utf-8"))


def _read_array(
    name: str,
    head: str,
    chunks: Iterator[str],
    on_error: str,
    *,
    start: int | None = None,
    index: int = 0,
    expect_comma: bool = False,
    lines_before: int = 0,
    bytes_before: int = 0,
) -> Iterator[RawRecord | BadRecord]:
    """The elements of a JSON array, decoded as text by the standard decoder.

    ``head`` starts at the array's ``[`` (or, from :func:`_read_array_bytes`, at ``start``
    with ``index`` elements already read, ``lines_before`` newlines and ``bytes_before`` bytes
    before it in the input).
    """
    buf = head
    pos = buf.index("[") + 1 if start is None else start
    eof = False
    line_at = lines_before + 1  # line number at buffer position counted_to
    counted_to = 0
    after_comma = False

    def more(want: int) -> bool:
        nonlocal buf, eof
        if eof:
            return False
        got = 0
        parts = [buf]
        try:
            for text in chunks:
                parts.append(text)
                got += len(text)
                if got >= want:
                    return True
            eof = True
            return got > 0
        finally:
            # One copy per call: buf is the enclosing function's, so += would copy it per chunk.
            buf = "".join(parts)

    def locate(at: int) -> tuple[int, int]:
        return (
            lines_before + buf.count("\n", 0, at) + 1,
            bytes_before + len(buf[:at].encode("utf-8", "surrogateescape")),
        )

    def fail(msg: str, at: int, reach: int | None = None) -> InputError:
        # Bytes that are not UTF-8 in what the reader was reading, up to the end of the token
        # it stopped at (or ``reach``), are the first error: "tr\xe9ue" is no misspelt literal.
        if reach is None:
            token = _TOKEN_END.search(buf, at + 1)
            reach = token.start() if token else len(buf)
        bad = _BAD_BYTE.search(buf, pos, reach)
        if bad is not None:
            line, offset = locate(bad.start())
            return InputError(_NOT_UTF8, file=name, line=line, offset=offset)
        line, offset = locate(at)
        return InputError(f"malformed JSON array: {msg}", file=name, line=line, offset=offset)

    while True:
        # Skip white space and the separator before the next element.
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf) or not more(CHUNK):
                break
        if pos >= len(buf):
            err = fail("unexpected end of input, expected ']'", pos)
            if on_error == "fail":
                raise err
            yield BadRecord(name, index, err.line, err, "", resumable=False)
            return
        c = buf[pos]
        if c == "]" and after_comma:  # json.load refuses "[{...},]" too
            err = fail(f"trailing ',' after record {index - 1}, expected a record before ']'", pos)
            if on_error == "fail":
                raise err
            # Nothing is lost: the array ends here as it would without the comma.
            yield BadRecord(name, index, err.line, err, _shown(buf[pos : pos + 200]))
            index += 1
            after_comma = False
            continue
        if c == "]":
            rest = buf[pos + 1 :].strip(_WS)
            while not rest and more(CHUNK):
                rest = buf[pos + 1 :].strip(_WS)
            if not rest:
                return
            err = fail("extra data after the closing ']'", buf.index(rest[0], pos + 1))
            if on_error == "fail":
                raise err
            yield BadRecord(name, index, err.line, err, _shown(rest[:200]), resumable=False)
            return
        if expect_comma:
            if c != ",":
                err = fail(f"expected ',' or ']' after record {index - 1}, found {c!r}", pos)
                if on_error == "fail":
                    raise err
                text = _shown(buf[pos : pos + 200])
                yield BadRecord(name, index, err.line, err, text, resumable=False)
                return
            pos += 1
            expect_comma = False
            after_comma = True
            continue
        # Decode one element; an error may only mean the element is not all in the buffer yet.
        last_err: tuple[str, int] | None = None
        cut = -1  # where an element with bad bytes ends, as the byte reader delimits it
        while True:
            if c not in '{["':
                # A bare number or literal: up to a delimiter, as the byte reader takes it. With
                # bad bytes in it ("12\xe9", "tr\xe9ue") it is rejected alone.
                token = _TEXT_SCALAR.match(buf, pos)
                stop = token.end() if token is not None else pos
                # Read on while it runs to the buffer's end, doubling each read (no token is
                # matched twice from its start), up to the byte reader's element limit.
                while (
                    stop == len(buf)
                    and stop - pos <= _ELEMENT_LIMIT * CHUNK
                    and more(max(CHUNK, len(buf) - pos))
                ):
                    more_of = _TEXT_SCALAR.match(buf, stop)
                    stop = more_of.end() if more_of is not None else stop
                if stop > pos and _BAD_BYTE.search(buf, pos, stop):
                    cut = stop
                    break
            try:
                value, end = _raw_decode(buf, pos)
            except ValueError as e:
                reason = _number_error(e)
                if reason is not None:
                    err = fail(f"record {index}: {reason}", pos)
                    if on_error == "fail":
                        raise err from None
                    text = _shown(buf[pos : pos + 200])
                    yield BadRecord(name, index, err.line, err, text, resumable=False)
                    return
                assert isinstance(e, json.JSONDecodeError)
                # A real syntax error stays where it is when more text arrives; a truncated
                # element moves or disappears. Unterminated strings can only be judged at EOF.
                same = last_err == (e.msg, e.pos) and not e.msg.startswith("Unterminated string")
                last_err = (e.msg, e.pos)
                if not same and more(max(CHUNK, len(buf) - pos)):
                    continue
                # An unterminated string runs to the end of the input: all of it was read.
                whole = len(buf) if e.msg.startswith("Unterminated string") else None
                if c in '{["':
                    # As the byte reader: an element whose brackets close within its limit and
                    # that holds bytes that are not UTF-8 is rejected alone, syntax aside.
                    cut = _bad_element_end(buf, pos)
                    while (
                        cut == -2
                        and len(buf) - pos <= _ELEMENT_LIMIT * CHUNK
                        and more(max(CHUNK, len(buf) - pos))
                    ):
                        cut = _bad_element_end(buf, pos)
                if cut >= 0:
                    break
                err = fail(f"{_said(e)} in record {index}", e.pos, whole)
                if on_error == "fail":
                    raise err from None
                text = _shown(buf[pos : pos + 200])
                yield BadRecord(name, index, err.line, err, text, resumable=False)
                return
            # A bare number may continue in the next chunk.
            if (
                end == len(buf)
                and not eof
                and not isinstance(value, (dict, list, str))
                and more(max(CHUNK, len(buf) - pos))
            ):
                continue
            break
        line_at += buf.count("\n", counted_to, pos)
        counted_to = pos
        if cut >= 0:
            end = cut
        bad = _BAD_BYTE.search(buf, pos, end)
        if bad is not None:
            # A whole element with bad bytes in its strings: rejected alone, the array goes on.
            offset = locate(bad.start())[1]
            err = InputError(
                f"record {index}: not valid UTF-8", file=name, line=line_at, offset=offset
            )
            if on_error == "fail":
                raise err
            yield BadRecord(name, index, line_at, err, _shown(buf[pos:end]))
        else:
            yield RawRecord(name, index, line_at, value)
        index += 1
        pos = end
        expect_comma = True
        after_comma = False
        if pos > CHUNK:
            lines_before += buf.count("\n", 0, pos)
            # isascii() is O(1) on CPython (a flag of the string): skip the copy when it can.
            if buf.isascii():
                bytes_before += pos
            else:
                bytes_before += len(buf[:pos].encode("utf-8", "surrogateescape"))
            buf = buf[pos:]
            pos = 0
            counted_to = 0
            line_at = lines_before + 1


def iter_inputs(
    paths: Iterable[str | os.PathLike[str]], *, on_error: str = "fail"
) -> Iterator[RawRecord | BadRecord]:
    """Records of several inputs, one after the other."""
    for p in paths:
        yield from read_records(p, on_error=on_error)


# --------------------------------------------------------------------------- writing


def json_text(obj: Any, *, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    """Compact JSON text of a value read from JSON, by the json module, with twice the room for
    nesting that decoding has: whatever was read can be written from any stack."""
    return _deep(
        json.dumps,
        obj,
        ensure_ascii=ensure_ascii,
        sort_keys=sort_keys,
        separators=(",", ":"),
        room=2 * _JSON_DEPTH,
    )


def dumps(obj: Any) -> bytes:
    """One JSON document as compact UTF-8 bytes, deterministic for equal input."""
    try:
        return trimmed(orjson.dumps(obj))
    except TypeError:
        # Values orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates
        # that a "\ud800" escape read into a string) go through json.
        text = json_text(obj)
        if "NaN" in text or "Infinity" in text:
            # json writes a non-finite float as NaN or Infinity, which is not JSON: null, as
            # orjson writes it (the test is a cheap pretest; strings may hold the words).
            obj = _deep(_finite_floats, obj, room=2 * _JSON_DEPTH)
            text = json_text(obj)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8: written back as the escape it was read from.
            return json_text(obj, ensure_ascii=True).encode("ascii")


def _finite_floats(obj: Any) -> Any:
    """``obj`` with every NaN and infinite float made None. Loops, not comprehensions: one
    frame a level, as the json module's encoder, so that it goes as deep as the encoder."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out[k] = _finite_floats(v)
        return out
    if isinstance(obj, (list, tuple)):
        items = []
        for v in obj:
            items.append(_finite_floats(v))
        return items
    return obj


class Transactional:
    """A context manager that commits when its block succeeds and aborts when it raises.

    :meth:`prepare` does what can fail (writing, syncing) and leaves only the step that makes
    the output appear to :meth:`commit`; by default it does nothing."""

    def prepare(self) -> None:
        return None

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:  # noqa: PYI019 - typing.Self needs Python 3.11; 3.10 runs this
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


#: Bytes written between two syncs in the background (see :class:`AtomicFile`): what the sync
#: at commit may still have to write, on the critical path (9 ms for 17 MB here). Each sync
#: behind costs a thread and a journal commit, about twenty a second at full speed.
SYNC_BEHIND = 8 << 20

_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


# The temporary files of the atomic writers, each with the thread that made it, from before it
# exists until it is renamed or removed. SIGTERM and Ctrl-C raise between any two statements of
# the main thread: after a file is created and before its writer holds it, say. The run that
# fails then calls remove_temporaries, which knows every file, held or not.
_TEMPORARIES: dict[str, int] = {}


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (through symbolic links) is a device, pipe or socket: written in
    place, never replaced (``/dev/null``, ``/dev/stdout``, a FIFO)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def new_temporary(final: str) -> tuple[int, str]:
    """A new empty file beside ``final`` (``.{name}.{random}.tmp``, mode 0600), open for
    writing: its descriptor and path. Known to :func:`remove_temporaries` before it exists."""
    directory, base = os.path.split(os.path.abspath(final))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        _TEMPORARIES[path] = threading.get_ident()
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            del _TEMPORARIES[path]
        except OSError:
            del _TEMPORARIES[path]
            raise


def forget_temporary(path: str) -> None:
    """``path`` was renamed to its final name, or removed."""
    _TEMPORARIES.pop(path, None)


def discard_temporary(path: str) -> None:
    """Remove the temporary file ``path`` (already gone is fine) and forget it."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    forget_temporary(path)


def set_default_mode(path: str) -> None:
    """Give ``path`` the mode a new file gets (0666 less the umask): temporary files are made
    0600."""
    os.chmod(path, 0o666 & ~_umask())


def remove_temporaries() -> None:
    """Remove the temporary files this thread made and did not rename: a failed run's."""
    me = threading.get_ident()
    for path, owner in list(_TEMPORARIES.items()):
        if owner == me:
            try:
                os.unlink(path)
            except OSError:
                pass
            _TEMPORARIES.pop(path, None)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point: only a lone one can be in a str (JSON's
    escaped pairs decode to one character), read from a ``\\ud800`` escape. It has no UTF-8,
    so neither a tokenizer nor parquet can take it; the JSON writers write the escape back."""
    return not text.isascii() and _SURROGATE.search(text) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


def compression_of(path: str) -> str | None:
    """The compression a file name asks for (``.gz``, ``.zst``, ``.bz2``, ``.xz``, in any case),
    or None."""
    lower = path.lower()
    return next((kind for suffix, kind in _COMPRESSION.items() if lower.endswith(suffix)), None)


def _compressor(raw: IO[bytes], kind: str | None, name: str) -> IO[bytes]:
    """``raw`` behind the compressor ``kind`` asks for; closing it leaves ``raw`` open. The
    same bytes in give the same bytes out (gzip without a time stamp or name)."""
    if kind is None:
        return raw
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="")  # type: ignore[return-value]
    if kind == "bz2":
        import bz2

        return bz2.BZ2File(raw, "wb")  # type: ignore[return-value]
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(raw, "wb")  # type: ignore[return-value]
    return _zstandard(name).ZstdCompressor().stream_writer(raw, closefd=False)  # type: ignore[no-any-return]


def _zstandard(name: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigError(f"writing {name} needs zstandard: pip install 'convkit[zstd]'") from None
    return zstandard


class AtomicFile(Transactional):
    """A binary file that appears under its final name only when closed without error.

    ``-`` writes to stdout, and a name that is a device, pipe or socket (``/dev/null``, a FIFO)
    is written as it is: neither can be renamed, so neither is atomic. A symbolic link is kept:
    its target is the file replaced. Names ending in ``.gz``, ``.zst``, ``.bz2`` or ``.xz``
    are compressed so (gzip with a zero timestamp, so that equal output gives equal bytes).

    Where the system allows (Linux's ``O_TMPFILE``), the file has no name until it is
    committed: a run killed outright (SIGKILL, the OOM killer) leaves nothing behind, the
    kernel frees it. Elsewhere it is a hidden temporary file beside the final name.

    The file is synced to disk before it is renamed, so that a power cut cannot leave a final
    name on missing data. Every :data:`SYNC_BEHIND` bytes a background thread syncs what has
    been written so far, while the run goes on: the sync at the end then waits for the last
    part only, not for the whole file (120 MB took 40-60 ms to sync here).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._atomic = False  # written apart, renamed by commit: not committed nor aborted yet
        self._prepared = False
        self._tmp: str | None = None  # its temporary name; None while it has none
        self._unsynced = 0
        self._syncer: threading.Thread | None = None
        self._sync_error: Exception | None = None
        self._raw: IO[bytes]
        self._close = False  # a device or pipe opened here: closed by commit and abort
        self._made: list[str] = []  # directories made for it, deepest first: gone on abort
        if self.path == "-":
            if sys.stdout is None:  # started with standard output closed (>&-)
                raise OutputError(self.path, OSError(errno.EBADF, "it is closed"))
            self._raw = sys.stdout.buffer
            self._fh: IO[bytes] = self._raw
            return
        kind = compression_of(self.path)
        if kind == "zstd":
            _zstandard(self.path)  # before any file is made
        if is_special_file(self.path):
            try:
                self._raw = open(self.path, "wb")  # noqa: SIM115 - closed by commit or abort
            except OSError as e:
                raise OutputError(self.path, e) from None
            self._close = True
        else:
            # Through a symbolic link: the link stays, its target is replaced.
            self._target = os.path.realpath(self.path)
            directory = os.path.dirname(self._target)
            missing = _missing_directories(directory)
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                # "File exists" does not say which: the nearest existing path above the
                # missing ones may be a file.
                existing = os.path.dirname(missing[-1]) if missing else directory
                if os.path.exists(existing) and not os.path.isdir(existing):  # a bad path
                    raise ConfigError(
                        f"cannot create output directory {directory}: "
                        f"{existing} is not a directory"
                    ) from None
                # A read-only or full file system, no permission: the output cannot be
                # written, as when the file itself cannot be made.
                why = OSError(e.errno, f"cannot create its directory {directory}: {e.strerror}")
                raise OutputError(self.path, why) from None
            self._made = missing
            if os.path.isdir(self._target):  # then its folder was there: none made
                raise ConfigError(f"output is a directory, not a file: {self.path}")
            fd = _anonymous_file(directory)
            if fd is None:
                try:
                    fd, self._tmp = new_temporary(self._target)
                except OSError as e:
                    self._remove_made()
                    raise OutputError(self.path, e) from None
            self._atomic = True
            self._raw = os.fdopen(fd, "wb")
        self._fh = _compressor(self._raw, kind, self.path)

    def write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
            if self._atomic:
                self._unsynced += len(data)
                if self._unsynced >= SYNC_BEHIND:
                    self._sync_behind()
        except BrokenPipeError:
            raise  # the reader of standard output went away: the CLI stops quietly
        except OSError as e:
            raise OutputError(self.path, e) from None

    def _sync_behind(self) -> None:
        if self._syncer is not None:
            if self._syncer.is_alive():
                return  # the previous sync is still running: the next write tries again
            self._syncer.join()
        self._unsynced = 0
        self._raw.flush()  # what the buffer holds goes to the OS, which the thread syncs
        fd = self._raw.fileno()

        def sync() -> None:
            try:
                _datasync(fd)
            except Exception as e:  # noqa: BLE001 - raised by commit, in the writing thread
                self._sync_error = e

        self._syncer = threading.Thread(target=sync, name="convkit-sync", daemon=True)
        self._syncer.start()

    def _join_syncer(self) -> None:
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None

    def prepare(self) -> None:
        """Everything of :meth:`commit` but the rename: written, synced, closed. A run with
        several outputs prepares them all before it renames any, so that a full disk leaves
        none of them under its final name. Fails like commit, aborting."""
        if self._prepared:
            return
        try:
            self._prepare()
        except BaseException as e:
            self.abort()  # a commit that fails leaves no temporary file either
            if isinstance(e, OSError) and not isinstance(e, (OutputError, BrokenPipeError)):
                raise OutputError(self.path, e) from None
            raise
        self._prepared = True

    def _prepare(self) -> None:
        if not self._atomic:
            if self._fh is not self._raw:
                self._fh.close()
            self._raw.flush()
            if self._close:
                self._raw.close()
            return
        self._join_syncer()
        if self._sync_error is not None:
            raise self._sync_error
        if self._fh is not self._raw:
            self._fh.close()
        self._raw.flush()
        fd = self._raw.fileno()
        os.fsync(fd)
        if self._tmp is None:
            self._tmp = _name_anonymous_file(fd, self._target)
        self._raw.close()
        set_default_mode(self._tmp)

    def commit(self) -> None:
        self.prepare()
        if not self._atomic:
            return
        assert self._tmp is not None
        try:
            os.replace(self._tmp, self._target)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise OutputError(self.path, e) from None
            raise
        forget_temporary(self._tmp)
        self._atomic = False
        self._made = []  # they hold the output now

    def _remove_made(self) -> None:
        # Another output of the run may share them (and be committed): a directory that is
        # not empty stays.
        for directory in self._made:
            try:
                os.rmdir(directory)
            except OSError:
                break
        self._made = []

    def abort(self) -> None:
        # What is still buffered is thrown away: a failure to write it (the disk that filled
        # up) is no error of the abort.
        if not self._atomic:
            if self._close:
                _close_quietly(self._raw)
            return
        self._atomic = False
        self._join_syncer()  # the file descriptor stays open until its sync returns
        try:
            if self._fh is not self._raw:
                _close_quietly(self._fh)
            _close_quietly(self._raw)
        finally:
            if self._tmp is not None:
                discard_temporary(self._tmp)
            self._remove_made()


def _close_quietly(f: IO[bytes]) -> None:
    try:
        f.close()
    except OSError:
        try:
            f.close()  # the flush failed; this closes the descriptor
        except OSError:
            pass


def _missing_directories(directory: str) -> list[str]:
    """The directories makedirs(directory) would create, deepest first."""
    missing = []
    path = directory
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _anonymous_file(directory: str) -> int | None:
    """A new file in ``directory`` with no name (``O_TMPFILE``), open for writing; None where
    the system or the file system has none."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o600)
    except OSError:
        return None


def _name_anonymous_file(fd: int, final: str) -> str:
    """Link the anonymous file ``fd`` under a temporary name beside ``final``, known to
    :func:`remove_temporaries` before it exists, as :func:`new_temporary`'s are; its path."""
    directory, base = os.path.split(final)
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        while True:
            name = f".{base}.{secrets.token_hex(4)}.tmp"
            path = os.path.join(directory, name)
            _TEMPORARIES[path] = threading.get_ident()
            try:
                # A directory descriptor makes os.link call linkat, which then follows the
                # /proc link to the open file (link() would link the /proc entry itself).
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
                return path
            except FileExistsError:
                del _TEMPORARIES[path]
            except OSError:
                del _TEMPORARIES[path]
                raise
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RecordWriter(Transactional):
    """Writes JSON records as JSON Lines, or as one JSON array when the name ends in ``.json``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        kind = compression_of(self.path)
        plain = self.path[: self.path.rindex(".")] if kind else self.path
        self.array = plain.lower().endswith(".json")  # DATA.JSON too
        self._closed = False  # the array's closing bracket is written
        self.count = 0
        self._file = AtomicFile(self.path)

    def write(self, obj: Any) -> None:
        self.write_raw(dumps(obj))

    def write_raw(self, data: bytes) -> None:
        """Write one record already serialised as compact JSON."""
        if self.array:
            self._file.write(b"[\n" if self.count == 0 else b",\n")
            self._file.write(data)
        else:
            self._file.write(data)
            self._file.write(b"\n")
        self.count += 1

    def write_many(self, lines: list[bytes]) -> None:
        """Write records already serialised as compact JSON, in one write."""
        if not lines:
            return
        if self.array:
            head = b"[\n" if self.count == 0 else b",\n"
            self._file.write(head + b",\n".join(lines))
        else:
            lines.append(b"")
            try:
                self._file.write(b"\n".join(lines))
            finally:
                lines.pop()
        self.count += len(lines)

    def prepare(self) -> None:
        """See :meth:`AtomicFile.prepare`."""
        if self.array and not self._closed:
            self._file.write(b"\n]\n" if self.count else b"[]\n")
        self._closed = True
        self._file.prepare()

    def commit(self) -> None:
        self.prepare()
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()


def json_document(obj: Any) -> bytes:
    """One pretty-printed JSON document, as the stats file is written (staged in an
    :class:`AtomicFile` and committed with the run's other outputs)."""
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8") + b"\n"
