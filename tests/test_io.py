"""Streaming readers and atomic writers."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import pytest

from convkit import FilterConfig, convert
from convkit import io as cio
from convkit.errors import ConfigError, InputError
from convkit.io import AtomicFile, BadRecord, RecordWriter, read_records


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(p)


def values(path, **kw):
    return [(r.index, r.line, r.value) for r in read_records(path, **kw)]


def test_json_array_records_with_index_and_line(tmp_path):
    p = write(tmp_path, "a.json", '[\n {"a": 1},\n {"b": [2, 3]}\n]\n')
    assert values(p) == [(0, 2, {"a": 1}), (1, 3, {"b": [2, 3]})]


def test_json_lines_skip_blank_lines_and_count_lines(tmp_path):
    p = write(tmp_path, "a.jsonl", '{"a": 1}\n\n{"b": 2}')
    assert values(p) == [(0, 1, {"a": 1}), (1, 3, {"b": 2})]


def test_single_pretty_printed_object_is_one_record(tmp_path):
    p = write(tmp_path, "task.json", '{\n  "Definition": ["x"],\n  "Instances": []\n}\n')
    assert values(p) == [(0, 1, {"Definition": ["x"], "Instances": []})]


@pytest.mark.parametrize("text", ["", "  \n\n", "[]", "[ ]\n"])
def test_empty_inputs_give_no_records(tmp_path, text):
    assert values(write(tmp_path, "e.json", text)) == []


def test_utf8_bom_is_dropped(tmp_path):
    p = write(tmp_path, "bom.json", b'\xef\xbb\xbf[{"a": "\xc3\xa9"}]')
    assert values(p) == [(0, 1, {"a": "é"})]


def test_gzip_input(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write('{"a": 1}\n{"a": 2}\n')
    assert values(str(p)) == [(0, 1, {"a": 1}), (1, 2, {"a": 2})]


@pytest.mark.parametrize("kind", ["bz2", "xz", "gz"])
@pytest.mark.parametrize("named", [True, False])
def test_compressed_input_by_name_or_by_its_first_bytes(tmp_path, kind, named):
    import bz2
    import lzma

    compress = {"bz2": bz2.compress, "xz": lzma.compress, "gz": gzip.compress}[kind]
    p = tmp_path / (f"a.jsonl.{kind}" if named else "a.download")
    p.write_bytes(compress(b'{"a": 1}\n{"a": 2}\n'))
    assert values(str(p)) == [(0, 1, {"a": 1}), (1, 2, {"a": 2})]


def _where_it_ends(text: bytes) -> str:
    """Where a JSON Lines text decompressed up to a cut ends: in a line, or after a record."""
    done = text.count(b"\n")
    return f"record {done}" if text.endswith(b"\n") else f"line {done + 1}"


def test_a_cut_xz_input_is_an_error_not_a_shorter_dataset(tmp_path):
    import lzma

    p = tmp_path / "cut.jsonl.xz"
    cut = lzma.compress(b'{"a": 1}\n' * 1000)[:-30]
    p.write_bytes(cut)
    with pytest.raises(InputError) as e:
        list(read_records(str(p)))
    where = _where_it_ends(lzma.LZMADecompressor().decompress(cut))
    assert str(e.value) == (
        "cannot read compressed input: Compressed file ended before the end-of-stream marker "
        f"was reached — at {p} {where}"
    )


CUT_GZIP = (
    "cannot read compressed input: Compressed file ended before the end-of-stream marker was "
    "reached"
)


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_a_cut_gzip_input_keeps_what_came_before_it_in_skip_mode(tmp_path, layout):
    import zlib

    recs = [{"id": i, "text": f"record {i} " * (i % 7)} for i in range(3000)]
    if layout == "array":
        text = json.dumps(recs, indent=1).encode()
    else:
        text = b"".join(json.dumps(r).encode() + b"\n" for r in recs)
    p = tmp_path / "cut.gz"
    data = gzip.compress(text)
    p.write_bytes(data[: len(data) // 2])
    got = list(read_records(str(p), on_error="skip"))
    partial = zlib.decompressobj(31).decompress(data[: len(data) // 2])
    *good, bad = got
    assert [r.value for r in good] == recs[: len(good)]
    assert isinstance(bad, BadRecord) and not bad.resumable
    # The record the bytes end in is the bad one, after every byte before it was read: a
    # line of JSON Lines, an element of the indented array (4 lines each, the error's line
    # where the decoder stopped, the last line there is).
    k, last_line = len(good), partial.count(b"\n") + 1
    assert bad.index == k
    if layout == "lines":
        assert bad.line == k + 1 == last_line
    else:
        assert 2 + 4 * k <= bad.line == last_line < 2 + 4 * (k + 1)
    # The reader's own error, as for a plain file holding the bytes that came, then the cause.
    plain = tmp_path / ("cut.json" if layout == "array" else "cut.jsonl")
    plain.write_bytes(partial)
    *plain_good, plain_bad = read_records(str(plain), on_error="skip")
    assert [r.value for r in plain_good] == [r.value for r in good]
    own = plain_bad.error
    expected = InputError(f"{own.reason}; {CUT_GZIP}", file=str(p), line=own.line, offset=own.offset)
    assert str(bad.error) == str(expected)
    with pytest.raises(InputError) as e:
        list(read_records(str(p)))
    assert str(e.value) == str(bad.error)


def test_a_broken_record_before_the_cut_keeps_its_own_error(tmp_path):
    # All the JSON is there, but the gzip trailer is cut: the typo in record 1 is the error,
    # the cut its cause of nothing after it being read.
    p = tmp_path / "typo.json.gz"
    p.write_bytes(gzip.compress(b'[{"a": 1},\n {"b": x},\n {"c": 3}]\n')[:-4])
    message = (
        f"malformed JSON array: Expecting value in record 1; {CUT_GZIP} — at {p} line 2 byte 18"
    )
    got = list(read_records(str(p), on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord"]
    assert str(got[1].error) == message and not got[1].resumable
    with pytest.raises(InputError) as e:
        list(read_records(str(p)))
    assert str(e.value) == message
    # In JSON Lines the reader goes past the typo; the cut ends the input after the last line.
    p = tmp_path / "typo.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n{"b": x}\n{"c": 3}\n')[:-4])
    got = list(read_records(str(p), on_error="skip"))
    assert [(type(r).__name__, r.index) for r in got] == [
        ("RawRecord", 0), ("BadRecord", 1), ("RawRecord", 2), ("BadRecord", 3)
    ]
    assert got[1].resumable and not got[3].resumable
    assert str(got[3].error) == f"{CUT_GZIP} — at {p} record 3"


def test_records_before_an_error_are_yielded_in_fail_mode_from_compressed_input(tmp_path):
    p = tmp_path / "typo.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n{"a": 2}\n{"b": x}\n{"c": 3}\n'))
    seen = []
    with pytest.raises(InputError) as e:
        for rec in read_records(str(p)):
            seen.append(rec.value)
    assert seen == [{"a": 1}, {"a": 2}]
    assert str(e.value) == f"malformed JSON: Expecting value (column 7) — at {p} line 3"


def test_a_damaged_deflate_stream_is_an_input_error(tmp_path):
    # BFINAL=1 and the reserved block type 3 ("invalid block type" from zlib).
    p = tmp_path / "bad.jsonl.gz"
    p.write_bytes(gzip.compress(b"")[:10] + b"\xff" * 16)
    for on_error in ("fail", "skip"):
        with pytest.raises(InputError) as e:
            list(read_records(str(p), on_error=on_error))
        assert str(e.value) == (
            "cannot read compressed input: Error -3 while decompressing data: invalid block "
            f"type — at {p}"
        )


def test_a_cut_second_bz2_stream_keeps_the_first_whole(tmp_path, monkeypatch):
    import bz2

    monkeypatch.setattr(cio, "CHUNK", 4096)  # small reads made bz2's reader drop output
    first = b"".join(b'{"id": %d}\n' % i for i in range(300))
    second = b"".join(b'{"id": %d}\n' % i for i in range(300, 450))
    data = bz2.compress(first) + bz2.compress(second)
    p = tmp_path / "two.jsonl.bz2"
    for cut in range(1, 13):
        p.write_bytes(data[:-cut])
        d = bz2.BZ2Decompressor()
        whole = d.decompress(data[:-cut])
        whole += bz2.BZ2Decompressor().decompress(d.unused_data)
        *good, bad = read_records(str(p), on_error="skip")
        assert [r.value for r in good] == [{"id": i} for i in range(whole.count(b"\n"))]
        assert not bad.resumable


def test_a_compressed_input_cut_after_a_whole_record_ends_with_a_bad_record():
    recs = [cio.RawRecord("f.gz", i, i + 1, {"a": i}) for i in range(2)]
    cut = cio.InputError("cannot read compressed input: cut", file="f.gz")
    got = list(cio._until_unreadable("f.gz", iter(recs), [cut], "skip"))
    assert got[:2] == recs
    bad = got[2]
    assert (bad.index, bad.line, bad.text, bad.resumable) == (2, None, "", False)
    assert str(bad.error) == "cannot read compressed input: cut — at f.gz record 2"
    with pytest.raises(InputError) as e:
        list(cio._until_unreadable("f.gz", iter(recs), [cut], "fail"))
    assert str(e.value) == "cannot read compressed input: cut — at f.gz record 2"
    (first,) = cio._until_unreadable("f.gz", iter(()), [cut], "skip")
    assert first.index == 0 and str(first.error).endswith("— at f.gz record 0")
    assert list(cio._until_unreadable("f.gz", iter(recs), [], "skip")) == recs


def test_a_compressed_input_unreadable_from_its_start_is_an_error(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)
    for on_error in ("fail", "skip"):
        with pytest.raises(InputError, match=r"^cannot read compressed input: .* — at .*bad\.gz$"):
            list(read_records(str(p), on_error=on_error))


def test_sniffed_bytes_are_read_again_in_any_sizes():
    import io

    stream = cio._Prefixed(b"abcdef", io.BytesIO(b"ghij"))
    assert [stream.read(2), stream.read(3), stream.read(3), stream.read(), stream.read()] == [
        b"ab", b"cde", b"fgh", b"ij", b""
    ]
    assert cio._Prefixed(b"ab", io.BytesIO(b"cd")).read() == b"abcd"


def test_zstd_input(tmp_path):
    zstandard = pytest.importorskip("zstandard", reason="zstandard (convkit[zstd]) not installed")
    p = tmp_path / "a.json.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b'[{"a": 1}]'))
    assert values(str(p)) == [(0, 1, {"a": 1})]


def test_zstd_input_of_several_frames_in_small_reads(tmp_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard", reason="zstandard (convkit[zstd]) not installed")
    monkeypatch.setattr(cio, "CHUNK", 7)
    c = zstandard.ZstdCompressor()
    p = tmp_path / "a.jsonl.zst"
    p.write_bytes(c.compress(b'{"a": 1}\n{"a": 2}\n') + c.compress(b'{"a": 3}\n'))
    assert values(str(p)) == [(0, 1, {"a": 1}), (1, 2, {"a": 2}), (2, 3, {"a": 3})]


def test_truncated_zstd_input_is_an_error_not_a_shorter_dataset(tmp_path):
    zstandard = pytest.importorskip("zstandard", reason="zstandard (convkit[zstd]) not installed")
    c = zstandard.ZstdCompressor()
    first = c.compress(b"".join(b'{"a": %d}\n' % i for i in range(100)))
    second = c.compress(b"".join(b'{"a": %d}\n' % i for i in range(100, 20000)))
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(first + second[: len(second) // 2])
    with pytest.raises(InputError) as e:
        list(read_records(str(p)))
    partial = zstandard.ZstdDecompressor().decompressobj().decompress(second[: len(second) // 2])
    where = _where_it_ends(b"".join(b'{"a": %d}\n' % i for i in range(100)) + partial)
    message = (
        "cannot read compressed input: the input ends in the middle of a zstd frame "
        f"(truncated?) — at {p} {where}"
    )
    assert str(e.value) == message
    got = list(read_records(str(p), on_error="skip"))
    assert [r.value for r in got[:100]] == [{"a": i} for i in range(100)]
    assert str(got[-1].error) == message and not got[-1].resumable
    p.write_bytes(b"not zstd at all")
    with pytest.raises(InputError, match=r"^cannot read compressed input: not valid zstd data"):
        list(read_records(str(p)))


HUGE = "9" * 5000  # beyond Python's default limit of 4300 digits for decoding an int


def test_an_integer_too_long_to_decode_is_a_located_input_error(tmp_path):
    lines = write(tmp_path, "h.jsonl", '{"a": 1}\n{"n": %s}\n{"a": 3}\n' % HUGE)
    with pytest.raises(InputError) as e:
        list(read_records(lines))
    assert str(e.value) == (
        f"a number of more than 4300 digits, longer than Python decodes — at {lines} line 2"
    )
    array = write(tmp_path, "h.json", '[{"a": 1},\n {"n": %s},\n {"a": 3}]' % HUGE)
    with pytest.raises(InputError) as e:
        list(read_records(array))
    assert str(e.value) == (
        "record 1: a number of more than 4300 digits, longer than Python decodes "
        f"— at {array} line 2 byte 12"
    )


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("bad", [HUGE, _nested(3000)], ids=["long-integer", "too-deep"])
def test_an_element_too_long_or_too_deep_to_decode_is_skipped_alone(tmp_path, bad):
    for name, text in [
        ("h.jsonl", '{"a": 1}\n{"n": %s}\n{"a": 3}\n' % bad),
        ("h.json", '[{"a": 1},\n {"n": %s},\n {"a": 3}]' % bad),
    ]:
        got = list(read_records(write(tmp_path, name, text), on_error="skip"))
        assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord", "RawRecord"], name
        assert got[1].resumable and got[1].index == 1 and got[1].line == 2
        assert got[2].value == {"a": 3} and got[2].index == 2


TOO_DEEP = "arrays and objects nested too deeply to decode (more than about 2,000 levels)"


def test_nesting_too_deep_to_decode_is_a_located_input_error(tmp_path):
    deep = _nested(3000)
    lines = write(tmp_path, "d.jsonl", '{"a": 1}\n{"n": %s}\n{"a": 3}\n' % deep)
    with pytest.raises(InputError) as e:
        list(read_records(lines))
    assert str(e.value) == f"{TOO_DEEP} — at {lines} line 2"
    array = write(tmp_path, "d.json", '[{"a": 1},\n {"n": %s},\n {"a": 3}]' % deep)
    with pytest.raises(InputError) as e:
        list(read_records(array))
    assert str(e.value) == f"record 1: {TOO_DEEP} — at {array} line 2 byte 12"
    # Also from the standard decoder's own path (a long number sends a line there).
    long = write(tmp_path, "l.jsonl", '{"n": %s, "m": %s}\n' % (HUGE[:30], deep))
    with pytest.raises(InputError) as e:
        list(read_records(long))
    assert str(e.value) == f"{TOO_DEEP} — at {long} line 1"


def test_what_orjson_reads_nested_up_to_its_limit_is_read_and_written_back(tmp_path):
    # orjson reads 1,024 levels and writes 254; the json module takes over past either, and
    # past Python's recursion limit it is given room instead of raising RecursionError.
    limit = sys.getrecursionlimit()
    for depth in (1020, 1100):
        text = '{"n": %s}' % _nested(depth)
        p = write(tmp_path, f"n{depth}.jsonl", text + "\n")
        ((_, _, value),) = values(p)
        assert cio.dumps(value) == text.replace(" ", "").encode()
        # (compared as text: == on lists this deep would itself recurse too far)
        assert cio.dumps(cio.loads(cio.dumps(value))) == text.replace(" ", "").encode()
    assert sys.getrecursionlimit() == limit


def test_json_lines_after_a_byte_order_mark_count_it_in_offsets(tmp_path):
    data = b'\xef\xbb\xbf{"a": 1}\n{"a": "caf\xe9"}\n'
    p = write(tmp_path, "bom.jsonl", data)
    with pytest.raises(InputError) as e:
        list(read_records(p))
    bad = data.index(b"\xe9")  # the BOM's 3 bytes included
    assert str(e.value) == f"input is not valid UTF-8 — at {p} line 2 byte {bad}"


def test_decoder_messages_made_for_a_position_read_whole(tmp_path):
    # The decoder writes "Invalid control character at" to be followed by its position.
    p = write(tmp_path, "c.jsonl", '{"a": "x\ty"}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON: Invalid control character (column 9) — at {p} line 1"


def test_json_lines_with_a_broken_first_line_are_still_json_lines(tmp_path):
    p = write(tmp_path, "b.jsonl", '{"id": "a", "x":\n{"id": "b"}\n\n{"id": "c"}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON: Expecting value (column 17) — at {p} line 1"
    got = list(read_records(p, on_error="skip"))
    assert [(type(r).__name__, r.index, r.line) for r in got] == [
        ("BadRecord", 0, 1), ("RawRecord", 1, 2), ("RawRecord", 2, 4)
    ]
    assert got[0].text == '{"id": "a", "x":' and got[2].value == {"id": "c"}


def test_a_broken_pretty_printed_document_is_reported_where_it_breaks(tmp_path):
    p = write(tmp_path, "task.json", '{\n  "Definition": ["d"],\n  "Instances": [\n    {"input": 1}\n    {"input": 2}\n  ]\n}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON: Expecting ',' delimiter (column 5) — at {p} line 5"
    # With --on-error skip, a broken document is one broken record: the run goes on.
    got = list(read_records(p, on_error="skip"))
    assert [(type(r).__name__, r.index, r.line, str(r.error)) for r in got] == [
        ("BadRecord", 0, 1, str(e.value))
    ]
    assert got[0].text == '{\n  "Definition": ["d"],\n  "Instances": [\n    {"input": 1}\n    {"input": 2}\n  ]\n}\n'


@pytest.mark.parametrize(
    "elements",
    [
        '{"from": "human", "value": "Hi?"},\n{"from": "gpt", "value": "Hey."}',
        '{"from": "human", "value": "Hi?"}',  # one element: an object line, then "]}"
        '{"from": "human", "value": "Hi?"}]}\n',  # closed on the element's line
        '  {"from": "human", "value": "Hi?"},\n  {"from": "gpt", "value": "Hey."}]}\n',
    ],
)
def test_a_document_whose_second_line_is_an_element_of_an_array_is_one_document(
    tmp_path, elements
):
    text = '{"id": "t1", "conversations": [\n' + elements
    text += "" if elements.endswith("]}\n") else "\n]}\n"
    p = write(tmp_path, "doc.json", text)
    assert values(p) == [(0, 1, json.loads(text))]


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        ('{"id": "b", "score": NaN}', "RawRecord"),  # only the standard decoder reads it
        ('{"id": "b" broken', "BadRecord"),  # broken too
    ],
)
def test_json_lines_whose_first_two_lines_are_odd_are_still_json_lines(tmp_path, second, kind):
    p = write(tmp_path, "b.jsonl", '{"id": "a", "x":\n' + second + '\n{"id": "c"}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON: Expecting value (column 17) — at {p} line 1"
    got = list(read_records(p, on_error="skip"))
    assert [(type(r).__name__, r.index, r.line) for r in got] == [
        ("BadRecord", 0, 1), (kind, 1, 2), ("RawRecord", 2, 3)
    ]


def test_array_larger_than_chunks_streams_every_record(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 64)
    recs = [{"id": str(i), "text": "é" * (i % 50), "n": i} for i in range(300)]
    p = write(tmp_path, "big.json", json.dumps(recs, indent=1, ensure_ascii=False))
    got = [r.value for r in read_records(p)]
    assert got == recs


def test_record_longer_than_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 16)
    recs = [{"v": "x" * 5000}, {"v": "y"}, 12345678901234567890]
    p = write(tmp_path, "long.json", json.dumps(recs))
    assert [r.value for r in read_records(p)] == recs


def test_malformed_array_names_file_line_record_and_byte(tmp_path):
    p = write(tmp_path, "bad.json", '[\n{"a": 1},\n{"b": 2,,}\n]')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == (
        f"malformed JSON array: Expecting property name enclosed in double quotes in record 1"
        f" — at {p} line 3 byte 20"
    )


def test_malformed_array_byte_offset_counts_utf8_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 8)
    p = write(tmp_path, "bad.json", '[{"a": "ééééééé"}, {"b": nope}]')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert (
        str(e.value) == f"malformed JSON array: Expecting value in record 1 — at {p} line 1 byte 32"
    )
    assert e.value.offset == len('[{"a": "ééééééé"}, {"b": '.encode())


def test_missing_comma_between_records(tmp_path):
    p = write(tmp_path, "bad.json", '[{"a": 1} {"b": 2}]')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == (
        f"malformed JSON array: expected ',' or ']' after record 0, found '{{' — at {p} line 1 byte 10"
    )


def test_truncated_array(tmp_path):
    p = write(tmp_path, "cut.json", '[{"a": 1}, {"b": "unfinished')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == (
        f"malformed JSON array: Unterminated string starting in record 1 — at {p} line 1 byte 17"
    )


def test_data_after_array(tmp_path):
    p = write(tmp_path, "extra.json", '[{"a": 1}] x')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert (
        str(e.value)
        == f"malformed JSON array: extra data after the closing ']' — at {p} line 1 byte 11"
    )


TRAILING = "malformed JSON array: trailing ',' after record {}, expected a record before ']'"


@pytest.mark.parametrize("chunk", [8, 1 << 16])
def test_a_trailing_comma_is_an_error_as_in_json_load(tmp_path, monkeypatch, chunk):
    # With 8-byte chunks the comma and the bracket come in different reads.
    monkeypatch.setattr(cio, "CHUNK", chunk)
    p = write(tmp_path, "comma.json", '[{"a": 1}, {"b": 2},\n ]\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == TRAILING.format(1) + f" — at {p} line 2 byte 22"
    with pytest.raises(json.JSONDecodeError):
        json.loads(Path(p).read_text())


def test_a_trailing_comma_after_a_record_the_text_reader_read(tmp_path, monkeypatch):
    # A record longer than the byte reader's limit is read by the text reader, which goes on.
    monkeypatch.setattr(cio, "CHUNK", 16)
    p = write(tmp_path, "comma.json", json.dumps([{"v": "x" * 5000}, {"v": "y"}])[:-1] + ",]")
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == TRAILING.format(1) + f" — at {p} line 1 byte {os.path.getsize(p) - 1}"


def test_skip_mode_keeps_the_records_before_a_trailing_comma(tmp_path):
    p = write(tmp_path, "comma.json", '[{"a": 1}, {"b": 2},]')
    got = list(read_records(p, on_error="skip"))
    assert [r.value for r in got[:2]] == [{"a": 1}, {"b": 2}]
    bad = got[2]
    assert isinstance(bad, BadRecord) and len(got) == 3
    # Resumable: nothing after it is lost, the input is not cut short.
    assert (bad.index, bad.line, bad.text, bad.resumable) == (2, 1, "]", True)
    assert str(bad.error) == TRAILING.format(1) + f" — at {p} line 1 byte 20"
    p = write(tmp_path, "comma_junk.json", '[{"a": 1},] x')
    *_, comma, junk = read_records(p, on_error="skip")
    assert (comma.index, comma.resumable, junk.index, junk.resumable) == (1, True, 2, False)
    assert str(junk.error) == (
        f"malformed JSON array: extra data after the closing ']' — at {p} line 1 byte 12"
    )


def test_a_trailing_comma_in_skip_mode_loses_nothing(tmp_path):
    def rec(q):
        return {"id": q, "conversations": [{"from": "human", "value": f"{q} and why?"},
                                           {"from": "gpt", "value": "Because it is so."}]}

    p = write(tmp_path, "comma.json", json.dumps([rec("Who"), rec("What")])[:-1] + ",]")
    s = convert(p, tmp_path / "out.jsonl", on_error="skip", filters=FilterConfig(min_chars=0)).stats
    assert (s.records, s.conversations_out, dict(s.rejected)) == (3, 2, {"malformed_json": 1})
    assert s.cut_short == [] and s.accounted


@pytest.mark.parametrize("text", ["[,]", '[{"a": 1},,]', '[{"a": 1},, {"b": 2}]'])
def test_commas_with_no_record_between_are_errors(tmp_path, text):
    p = write(tmp_path, "comma.json", text)
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value).startswith("malformed JSON array: Expecting value in record ")


def test_malformed_json_line_names_file_and_line(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"a": 1}\n{"a": }\n{"a": 3}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON: Expecting value (column 7) — at {p} line 2"


def test_skip_mode_yields_bad_line_and_goes_on(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"a": 1}\n{"a": }\n{"a": 3}\n')
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord", "RawRecord"]
    bad = got[1]
    assert isinstance(bad, BadRecord)
    assert (bad.index, bad.line, bad.text, bad.resumable) == (1, 2, '{"a": }', True)
    assert got[2].value == {"a": 3} and got[2].index == 2


def test_skip_mode_array_gives_up_on_the_rest(tmp_path):
    p = write(tmp_path, "bad.json", '[{"a": 1}, {"a": }, {"a": 3}]')
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord"]
    assert got[1].resumable is False


def test_invalid_utf8_is_located(tmp_path):
    p = write(tmp_path, "latin.jsonl", b'{"a": "caf\xe9"}\n')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"input is not valid UTF-8 — at {p} line 1 byte 10"


def test_missing_input_file(tmp_path):
    p = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError) as e:
        list(read_records(p))
    assert str(e.value) == f"input file not found: {p}"


def test_bad_on_error_value():
    with pytest.raises(ConfigError) as e:
        list(read_records("x.json", on_error="ignore"))
    assert str(e.value) == "on_error must be 'fail' or 'skip', got 'ignore'"


def test_stdin(monkeypatch):
    import io as pyio

    class FakeStdin:
        buffer = pyio.BytesIO(b'{"a": 1}\n')

    monkeypatch.setattr(sys, "stdin", FakeStdin)
    assert [(r.file, r.value) for r in read_records("-")] == [("<stdin>", {"a": 1})]


# --------------------------------------------------------------------------- writers


def test_jsonl_writer_is_atomic(tmp_path):
    out = tmp_path / "out.jsonl"
    w = RecordWriter(out)
    w.write({"id": "a", "v": "é"})
    assert not out.exists()
    w.commit()
    assert out.read_bytes() == '{"id":"a","v":"é"}\n'.encode()


def test_json_writer_writes_an_array(tmp_path):
    out = tmp_path / "out.json"
    with RecordWriter(out) as w:
        w.write({"a": 1})
        w.write({"b": 2})
    assert json.loads(out.read_text()) == [{"a": 1}, {"b": 2}]
    assert out.read_text() == '[\n{"a":1},\n{"b":2}\n]\n'


@pytest.mark.parametrize("name", ["OUT.JSON", "out.Json.GZ"])
def test_file_name_suffixes_are_read_in_any_case(tmp_path, name):
    out = tmp_path / name
    with RecordWriter(out) as w:
        w.write({"a": 1})
    data = out.read_bytes()
    if name.endswith("GZ"):
        data = gzip.decompress(data)
    assert data == b'[\n{"a":1}\n]\n'
    assert [r.value for r in read_records(str(out))] == [{"a": 1}]


def test_empty_json_array_output(tmp_path):
    out = tmp_path / "out.json"
    with RecordWriter(out):
        pass
    assert out.read_text() == "[]\n"


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    with pytest.raises(RuntimeError):
        with RecordWriter(out) as w:
            w.write({"a": 1})
            raise RuntimeError("crash")
    assert out.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]


def test_gzip_output_is_deterministic(tmp_path):
    blobs = []
    for name in ("a.jsonl.gz", "b.jsonl.gz"):
        with RecordWriter(tmp_path / name) as w:
            w.write({"a": 1})
        blobs.append((tmp_path / name).read_bytes())
    assert blobs[0] == blobs[1]
    assert gzip.decompress(blobs[0]) == b'{"a":1}\n'


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_outputs_read_back_and_are_deterministic(tmp_path, suffix):
    if suffix == ".zst":
        pytest.importorskip("zstandard", reason="zstandard (convkit[zstd]) not installed")
    blobs = []
    for name in ("a", "b"):
        with RecordWriter(tmp_path / f"{name}.json{suffix}") as w:
            assert w.array  # .json before the compression's suffix: a JSON array
            w.write({"a": 1})
            w.write({"a": 2})
        blobs.append((tmp_path / f"{name}.json{suffix}").read_bytes())
    assert blobs[0] == blobs[1] and not blobs[0].startswith(b"[")
    assert values(str(tmp_path / f"a.json{suffix}")) == [(0, 2, {"a": 1}), (1, 3, {"a": 2})]


def test_big_integers_survive_writing(tmp_path):
    assert cio.dumps({"n": 2**70}) == b'{"n":1180591620717411303424}'


def test_missing_output_directories_are_created(tmp_path):
    with RecordWriter(tmp_path / "a" / "b" / "out.jsonl") as w:
        w.write({"a": 1})
    assert (tmp_path / "a" / "b" / "out.jsonl").read_text() == '{"a":1}\n'


def test_output_cannot_be_a_directory(tmp_path):
    with pytest.raises(ConfigError) as e:
        AtomicFile(tmp_path)
    assert str(e.value) == f"output is a directory, not a file: {tmp_path}"


def test_reading_an_array_keeps_memory_bounded(tmp_path):
    import tracemalloc

    # 40 MB of records: reading them one at a time must not hold the file, only a few chunks.
    rec = {"id": "x", "conversations": [{"from": "human", "value": "word " * 200}] * 4}
    p = tmp_path / "big.json"
    with open(p, "w") as f:
        f.write("[")
        for i in range(10000):
            f.write(("," if i else "") + json.dumps({**rec, "id": str(i)}))
        f.write("]")
    size = p.stat().st_size
    tracemalloc.start()
    n = 0
    for r in read_records(str(p)):
        n += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 10000 and size > 40_000_000
    assert peak < 8 * cio.CHUNK  # a few MB, whatever the file size


def test_skipping_bad_array_records_keeps_memory_bounded(tmp_path, monkeypatch):
    import tracemalloc

    # Latin-1 text in every element: each is skipped alone, and the buffer is still trimmed.
    monkeypatch.setattr(cio, "CHUNK", 1 << 16)
    p = tmp_path / "latin.json"
    with open(p, "wb") as f:
        f.write(b"[")
        for i in range(2000):
            f.write(b"," if i else b"")
            f.write(b'{"id": "%d", "text": "caf\xe9 ' % i + b"word " * 1000 + b'"}\n')
        f.write(b',{"id": "last", "text": "ok"}]')
    data = p.read_bytes()
    kinds, got = [], []
    tracemalloc.start()
    for r in read_records(str(p), on_error="skip"):
        kinds.append(type(r).__name__)
        if r.index >= 1998:
            got.append(r)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert kinds == ["BadRecord"] * 2000 + ["RawRecord"]
    assert [r.line for r in got] == [1999, 2000, 2001]
    at = data.rindex(b"\xe9")
    assert str(got[1].error) == f"record 1999: not valid UTF-8 — at {p} line 2000 byte {at}"
    assert len(data) > 10_000_000
    assert peak < 8 * cio.CHUNK  # a few chunks, not the file


def test_invalid_utf8_after_a_huge_element_is_rejected_alone_in_skip_mode(tmp_path, monkeypatch):
    # An element over the scan's limit hands the rest of the array to the text reader. It
    # steps over bad bytes as the byte reader does: that record is rejected, the rest is read.
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = b'[{"n": 0}, {"n": 1, "t": "' + b"x" * 400 + b'"}, {"n": 2},\n {"n": "caf\xe9"},'
    body += b' {"n": 4}]'
    p = write(tmp_path, "huge.json", body)
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord"] * 3 + ["BadRecord", "RawRecord"]
    bad = got[3]
    assert (bad.index, bad.line, bad.resumable, bad.text) == (3, 2, True, '{"n": "caf\ufffd"}')
    at = body.index(b"\xe9")
    assert str(bad.error) == f"record 3: not valid UTF-8 — at {p} line 2 byte {at}"
    assert (got[4].index, got[4].line, got[4].value) == (4, 2, {"n": 4})
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == str(bad.error)


def test_the_text_reader_counts_bytes_past_bad_bytes(tmp_path, monkeypatch):
    # Offsets after a rejected record still count the input's bytes, bad ones included.
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = b"[" + b'{"t": "' + b"x" * 400 + b'"}, "\xff\xfe", "\xe9t\xe9",\n {"n": }]'
    p = write(tmp_path, "after.json", body)
    got = list(read_records(p, on_error="skip"))
    assert ["R" if isinstance(r, cio.RawRecord) else "B" for r in got] == ["R", "B", "B", "B"]
    assert [r.resumable for r in got[1:]] == [True, True, False]
    at = body.index(b"\xe9")
    assert str(got[2].error) == f"record 2: not valid UTF-8 — at {p} line 1 byte {at}"
    at = body.index(b"}]")
    assert str(got[3].error) == (
        f"malformed JSON array: Expecting value in record 3 — at {p} line 2 byte {at}"
    )


_BIG = b'{"t": "' + b"x" * 400 + b'"}'  # over the scan's limit: the text reader takes over
_TEXT_READER_CASES = {
    # bad bytes after the closing bracket
    "after_end": (b'[{"a": 1}]\n\xff\n', ["R"], "input is not valid UTF-8", 2),
    # bad bytes right after a whole element: it is read, the bytes stop the array
    "after_element": (b"[" + _BIG + b', {"a": 1}\xe9, {"b": 2}]', ["R", "R"],
                      "input is not valid UTF-8", 1),
    # a syntax error before the bad bytes is reported as such
    "syntax_first": (
        b'[{"n": 0}, ' + _BIG + b', {"n": 2} {"n": 3}, "caf\xe9"]',
        ["R", "R", "R"],
        "malformed JSON array: expected ',' or ']' after record 2, found '{'",
        1,
    ),
    # the bad byte is the first thing the text reader reads
    "at_handoff": (b'[{"a": 1} \xff, {"a": 2}]', ["R"], "input is not valid UTF-8", 1),
    # a string that the bad bytes cut and that never ends
    "cut_string": (b"[" + _BIG + b', "ab\xe9cd]', ["R"], "input is not valid UTF-8", 1),
    "cut_long_string": (b"[" + _BIG + b', "ab cd, e\xe9 ]', ["R"], "input is not valid UTF-8", 1),
}


@pytest.mark.parametrize("case", list(_TEXT_READER_CASES))
def test_text_reader_ends_at_bad_bytes_with_the_right_error(tmp_path, monkeypatch, case):
    monkeypatch.setattr(cio, "CHUNK", 16)
    body, kinds, message, line = _TEXT_READER_CASES[case]
    p = write(tmp_path, f"{case}.json", body)
    got = list(read_records(p, on_error="skip"))
    assert ["R" if isinstance(r, cio.RawRecord) else "B" for r in got] == [*kinds, "B"]
    bad = got[-1]
    assert not bad.resumable and bad.line == line
    assert bad.error.reason == message
    assert "\ufffd" in bad.text or not bad.text or case == "syntax_first"
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == str(bad.error)


@pytest.mark.parametrize(
    ("element", "shown"),
    [
        (b"12\xe9", "12\ufffd"),  # a number the bad bytes cut
        (b'{"a": tr\xe9ue}', '{"a": tr\ufffdue}'),  # a literal ("Expecting value" would blame JSON)
        (b"tr\xe9ue", "tr\ufffdue"),
        # only ASCII white space ends a bare value, as in the byte reader
        (b"12\xe9\x1cx", "12\ufffd\x1cx"),
        (b"12\xe9\xc2\xa0x", "12\ufffd\xa0x"),
        # its end is further than the text read so far
        (b'{"a": [1\xe9, 2], "t": "' + b"y" * 100 + b'"}', '{"a": [1\ufffd, 2], "t": "' + "y" * 100 + '"}'),
    ],
)
def test_the_text_reader_rejects_an_element_with_bad_bytes_alone(tmp_path, monkeypatch,
                                                                  element, shown):
    # As the byte reader does: the element as its brackets or delimiters bound it.
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = b"[" + _BIG + b", " + element + b", 3]"
    p = write(tmp_path, "cut.json", body)
    got = list(read_records(p, on_error="skip"))
    assert ["R" if isinstance(r, cio.RawRecord) else "B" for r in got] == ["R", "B", "R"]
    assert (got[1].text, got[1].resumable, got[2].value) == (shown, True, 3)
    at = body.index(b"\xe9")
    assert str(got[1].error) == f"record 1: not valid UTF-8 — at {p} line 1 byte {at}"
    small = write(tmp_path, "small.json", b"[" + element + b", 3]")  # the byte reader
    assert [(r.text if isinstance(r, cio.BadRecord) else r.value)
            for r in read_records(small, on_error="skip")] == [shown, 3]


def test_decoded_chunks_keep_each_bad_byte_as_a_lone_surrogate():
    # "é" is cut between the chunks and decoded whole; the bad byte after it is kept apart.
    chunks = cio._chunks(iter([b"ab\xc3", b"\xa9\xff", b"cd"]))
    assert list(chunks) == ["ab", "\xe9\udcff", "cd"]
    assert list(cio._chunks(iter([b"ab\xc3"]))) == ["ab", "\udcc3"]


def test_invalid_utf8_line_is_skipped_in_skip_mode(tmp_path):
    p = write(tmp_path, "latin.jsonl", b'{"a": 1}\n{"a": "caf\xe9"}\n{"a": 3}\n')
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord", "RawRecord"]
    assert str(got[1].error) == f"input is not valid UTF-8 — at {p} line 2 byte 19"
    assert got[1].text == '{"a": "caf\ufffd"}'


def test_an_invalid_utf8_element_is_rejected_whole_and_alone(tmp_path):
    # Its rejects text is the whole element (a record can be mended from it), not the next
    # 200 bytes of the file, and the array goes on after it.
    long = b"x" * 300
    body = b'[{"a": "caf\xe9 ' + long + b'"} ,\n {"a": 2}]'
    p = write(tmp_path, "latin.json", body)
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["BadRecord", "RawRecord"]
    assert (got[0].text, got[0].resumable) == ('{"a": "caf\ufffd ' + "x" * 300 + '"}', True)
    assert (got[1].value, got[1].line) == ({"a": 2}, 2)


def test_utf8_bom_before_json_lines(tmp_path):
    p = write(tmp_path, "bom.jsonl", b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    assert values(p) == [(0, 1, {"a": 1}), (1, 2, {"a": 2})]


# -- the array fast path (byte ranges decoded by orjson) and its hand-off to the exact reader --


@pytest.mark.parametrize("chunk", [8, 64, 1 << 20])
def test_array_elements_of_every_kind(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(cio, "CHUNK", chunk)
    recs = [
        {"a": "}]\\\"{["},
        [1, [2, {"b": None}]],
        "a string, with ] and \\",
        12345678901234567890,  # beyond 64 bits: the standard decoder's
        -1.5e3,
        True,
        None,
        {"s": "\ud800"},  # a lone surrogate escape: orjson refuses it, json takes it
    ]
    p = write(tmp_path, "kinds.json", "[" + " ,\n\t".join(json.dumps(r) for r in recs) + "]")
    assert values(p) == [(i, 1 if i == 0 else i + 1, r) for i, r in enumerate(recs)]


def test_array_lines_and_records_are_counted_across_trimmed_buffers(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 32)
    recs = [{"id": i, "text": "é\n" * (i % 7)} for i in range(200)]
    p = write(tmp_path, "lines.json", json.dumps(recs, indent=1, ensure_ascii=False))
    got = values(p)
    assert [v for _, _, v in got] == recs
    # indent=1: each record takes 4 lines ("{", "id", "text", "}") after the "[" line.
    assert [line for _, line, _ in got] == [2 + 4 * i for i in range(200)]


def test_array_error_after_many_records_is_located_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 64)
    good = ",\n".join(json.dumps({"n": i, "t": "ü" * 9}, ensure_ascii=False) for i in range(150))
    text = "[\n" + good + ',\n{"n": 150, "t": tru}\n]'
    p = write(tmp_path, "late.json", text)
    got = []
    with pytest.raises(InputError) as e:
        for r in read_records(p):
            got.append(r.value["n"])
    assert got == list(range(150))
    offset = len(text[: text.index("tru}")].encode())
    assert str(e.value) == (
        f"malformed JSON array: Expecting value in record 150 — at {p} line 152 byte {offset}"
    )


def test_array_invalid_utf8_is_located(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 16)
    p = write(tmp_path, "latin.json", b'[{"a": "ok"}, {"a": "caf\xe9"}]')
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"record 1: not valid UTF-8 — at {p} line 1 byte 24"
    # In skip mode the element goes alone: the scan knows where it ends.
    got = list(read_records(p, on_error="skip"))
    assert [type(r).__name__ for r in got] == ["RawRecord", "BadRecord"] and got[1].resumable


def test_array_skip_mode_keeps_the_records_before_a_late_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = ", ".join(json.dumps({"n": i}) for i in range(20))
    p = write(tmp_path, "skip.json", "[" + body + ', {"n": }, {"n": 21}]')
    got = list(read_records(p, on_error="skip"))
    assert [r.value["n"] for r in got[:-1]] == list(range(20))
    assert isinstance(got[-1], BadRecord) and got[-1].index == 20 and not got[-1].resumable


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("o.jsonl", b'{"a":1}\n{"b":2}\n{"c":3}\n'),
        ("o.json", b'[\n{"a":1},\n{"b":2},\n{"c":3}\n]\n'),
    ],
)
def test_write_many_writes_what_write_raw_would(tmp_path, name, expected):
    one, many = tmp_path / "one" / name, tmp_path / "many" / name
    with RecordWriter(one) as w:
        for line in (b'{"a":1}', b'{"b":2}', b'{"c":3}'):
            w.write_raw(line)
    lines = [b'{"b":2}', b'{"c":3}']
    with RecordWriter(many) as w:
        w.write_many([b'{"a":1}'])
        w.write_many([])
        w.write_many(lines)
        assert w.count == 3
    assert lines == [b'{"b":2}', b'{"c":3}']  # the caller's list is left as it was
    assert one.read_bytes() == many.read_bytes() == expected


def test_json_lines_longer_than_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 8)
    recs = [{"v": "x" * 500}, {"v": "y"}, {"v": "é" * 300}]
    p = write(tmp_path, "long.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n\n")
    assert values(p) == [(0, 1, recs[0]), (1, 2, recs[1]), (2, 3, recs[2])]
    p = write(tmp_path, "nonl.jsonl", json.dumps(recs[0]))  # no final newline
    assert values(p) == [(0, 1, recs[0])]


def test_data_after_array_chunks_later(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 4)
    text = '[{"a": 1}]' + " \n" * 10 + "x"
    p = write(tmp_path, "extra.json", text)
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == (
        f"malformed JSON array: extra data after the closing ']' — at {p} line 11 byte {len(text) - 1}"
    )
    p = write(tmp_path, "fine.json", '[{"a": 1}]' + " \n" * 10)
    assert values(p) == [(0, 1, {"a": 1})]


def test_integers_beyond_64_bits_stay_exact(tmp_path, monkeypatch):
    # orjson would return floats for these; the standard decoder keeps them exact.
    big = [123456789012345678901234, -9223372036854775809, 18446744073709551616]
    rec = {"id": big[0], "n": big[1:], "s": "1234567890123456789012"}
    for chunk in (8, 1 << 20):
        monkeypatch.setattr(cio, "CHUNK", chunk)
        p = write(tmp_path, "big.json", json.dumps([rec, big[0], {"a": 1}]))
        assert [r.value for r in read_records(p)] == [rec, big[0], {"a": 1}]
        p = write(tmp_path, "big.jsonl", json.dumps(rec) + "\n" + json.dumps({"a": 1}) + "\n")
        assert [r.value for r in read_records(p)] == [rec, {"a": 1}]
        assert type(next(iter(read_records(p))).value["id"]) is int


def test_array_after_a_byte_order_mark_locates_errors_in_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 4)
    data = b"\xef\xbb\xbf  \n [\r\n0.052, \"caf\xff\"]"
    p = write(tmp_path, "bom.json", data)
    with pytest.raises(InputError) as e:
        list(read_records(p))
    bad = data.index(b"\xff")
    assert str(e.value) == f"record 1: not valid UTF-8 — at {p} line 3 byte {bad}"


def test_an_element_that_never_closes_goes_to_the_text_reader(tmp_path, monkeypatch):
    # A typo'd bracket must not make the fast path read the rest of the input into memory.
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = ", ".join(json.dumps({"n": i, "t": "x" * 20}) for i in range(200))
    text = '[{"a": [1}, ' + body + "]"
    p = write(tmp_path, "typo.json", text)
    seen = []
    real = cio._read_array

    def spy(*args, **kwargs):
        seen.append(kwargs["bytes_before"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cio, "_read_array", spy)
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == (
        f"malformed JSON array: Expecting ',' delimiter in record 0 — at {p} line 1 byte 9"
    )
    assert seen == [1]  # handed over at the element's start, long before the end of the file


def test_a_scalar_position_holding_no_value_is_handed_over_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 16)
    p = write(tmp_path, "comma.json", "[," + ", ".join(['{"a": 1}'] * 100) + "]")
    with pytest.raises(InputError) as e:
        list(read_records(p))
    assert str(e.value) == f"malformed JSON array: Expecting value in record 0 — at {p} line 1 byte 1"


def test_a_large_output_is_synced_behind_and_whole(tmp_path, monkeypatch):
    # Every SYNC_BEHIND bytes a thread syncs what was written; the file is complete at the end.
    monkeypatch.setattr(cio, "SYNC_BEHIND", 1000)
    synced = []
    monkeypatch.setattr(cio, "_datasync", lambda fd: synced.append(os.fstat(fd).st_size))
    path = tmp_path / "out.jsonl"
    f = AtomicFile(path)
    for i in range(50):
        f.write(b"%04d" % i + b"x" * 96)
    assert not path.exists()
    f.commit()
    assert path.read_bytes() == b"".join(b"%04d" % i + b"x" * 96 for i in range(50))
    # Each sync saw what was written up to it (at least one sync ran before the end).
    assert synced and synced == sorted(synced) and synced[0] >= 1000 and synced[-1] <= 5000


def test_a_failed_background_sync_fails_the_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "SYNC_BEHIND", 10)

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cio, "_datasync", broken)
    with pytest.raises(OSError, match=r"Input/output error"):
        with AtomicFile(tmp_path / "out.jsonl") as f:
            f.write(b"x" * 100)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temporary file


def _anonymous_files_here(directory) -> bool:
    fd = cio._anonymous_file(str(directory))
    if fd is None:
        return False
    os.close(fd)
    return True


@pytest.mark.parametrize("anonymous", [True, False])
def test_an_output_has_no_name_until_it_is_committed(tmp_path, monkeypatch, anonymous):
    if not anonymous:
        monkeypatch.setattr(cio, "_anonymous_file", lambda directory: None)
    elif not _anonymous_files_here(tmp_path):
        pytest.skip("no O_TMPFILE here")
    old = os.umask(0o027)
    try:
        f = AtomicFile(tmp_path / "out.jsonl.gz")
        f.write(b"x" * 100)
        hidden = [p.name for p in tmp_path.iterdir()]
        f.commit()
    finally:
        os.umask(old)
    if anonymous:
        assert hidden == []
    else:
        assert len(hidden) == 1 and hidden[0].startswith(".out.jsonl.gz.")
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == b"x" * 100
    assert (tmp_path / "out.jsonl.gz").stat().st_mode & 0o777 == 0o640
    assert cio._TEMPORARIES == {}


def test_a_process_killed_outright_leaves_no_file(tmp_path):
    import signal
    import subprocess

    if not _anonymous_files_here(tmp_path):
        pytest.skip("no O_TMPFILE here: a temporary file would stay")
    code = (
        "import sys, time\n"
        "from convkit.io import AtomicFile\n"
        f"f = AtomicFile({str(tmp_path / 'out.jsonl')!r})\n"
        "f.write(b'x' * 100000)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []


def test_a_lone_surrogate_read_from_an_escape_is_written_back_as_that_escape(tmp_path):
    p = write(tmp_path, "s.jsonl", '{"t": "a\\ud800b"}\n')
    (rec,) = read_records(p)
    assert rec.value == {"t": "a\ud800b"}
    assert cio.dumps(rec.value) == b'{"t":"a\\ud800b"}'


def test_the_text_reader_does_not_run_past_the_element_limit_for_a_bad_element(tmp_path,
                                                                               monkeypatch):
    # A bracket that never closes, then bad bytes much later: as the byte reader, the reader
    # does not pull the rest of the input in to find an end; the syntax error stands.
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = b"[" + _BIG + b', {"a": [1, 2}, ' + b'{"n": 1}, ' * 200 + b'"caf\xe9"]'
    p = write(tmp_path, "open.json", body)
    got = list(read_records(p, on_error="skip"))
    assert ["R" if isinstance(r, cio.RawRecord) else "B" for r in got] == ["R", "B"]
    assert not got[1].resumable
    assert got[1].error.reason == "malformed JSON array: Expecting ',' delimiter in record 1"


def test_a_bare_token_with_a_syntax_error_is_not_bounded_as_brackets(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "CHUNK", 16)
    body = b"[" + _BIG + b', tru, 1, {"x": "\xe9"}, 5]'
    p = write(tmp_path, "tru.json", body)
    got = list(read_records(p, on_error="skip"))
    assert ["R" if isinstance(r, cio.RawRecord) else "B" for r in got] == ["R", "B"]
    assert got[1].error.reason == "malformed JSON array: Expecting value in record 1"


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_nan_infinity_and_numbers_beyond_a_double_are_written_as_null(tmp_path, layout):
    # orjson refuses these, so the standard decoder reads such a record; a long integer beside
    # them used to make the writer fall back to json.dumps, which wrote NaN and Infinity.
    def turns(q):
        return f'"conversations":[{{"from":"human","value":"{q}"}},{{"from":"gpt","value":"A bot."}}]'

    recs = [
        '{"id":"a","x":NaN,"y":1e400,"z":-Infinity,"f":-1.5e-3,"n":12345678901234567890123,'
        + turns("Who are you?")
        + "}",
        '{"id":"b","x":Infinity,"y":-1E+400,' + turns("What are you?") + "}",
    ]
    src = tmp_path / ("in.jsonl" if layout == "jsonl" else "in.json")
    src.write_text("\n".join(recs) if layout == "jsonl" else "[" + ",\n".join(recs) + "]")
    out = tmp_path / "out.jsonl"
    convert(src, out, filters=FilterConfig(min_chars=0))
    assert out.read_text().splitlines() == [
        '{"id":"a",' + turns("Who are you?") + ',"x":null,"y":null,"z":null,"f":-0.0015,'
        '"n":12345678901234567890123}',
        '{"id":"b",' + turns("What are you?") + ',"x":null,"y":null}',
    ]


def test_dumps_writes_non_finite_floats_as_null_on_its_json_path_too():
    # A 70-bit integer sends the value through the json module, which writes NaN and Infinity.
    value = {"x": float("nan"), "y": [float("-inf"), 1.5], "s": "NaN, Infinity", "n": 2**70}
    assert cio.dumps(value) == (
        b'{"x":null,"y":[null,1.5],"s":"NaN, Infinity","n":1180591620717411303424}'
    )
    assert cio.dumps({"x": float("inf")}) == b'{"x":null}'  # orjson's own way


def test_dumps_returns_bytes_that_hold_only_their_text():
    # orjson's bytes keep its whole working buffer (room for every string escaped, several
    # times the text); a batch of output lines must not hold that.
    import tracemalloc

    value = {"id": "a", "text": "caf\u00e9 \u4e2d\u6587 " * 2000}
    cio.dumps(value)  # the str keeps the UTF-8 orjson asks it for: not counted below
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        data = cio.dumps(value)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert data == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(data) == 26020
    assert held < len(data) + 64


def test_json_lines_with_a_broken_first_line_and_a_record_split_by_a_raw_new_line(tmp_path):
    # Lines 3 and 4 are one record whose string holds a raw new line: both are rejected, the
    # records around them read.
    text = '{"a": 1\n{"id": "b"}\n{"id": "c", "t": "x\ny"}\n{"id": "d"}\n'
    p = write(tmp_path, "b.jsonl", text)
    got = list(read_records(p, on_error="skip"))
    assert [(type(r).__name__, r.index, r.line) for r in got] == [
        ("BadRecord", 0, 1), ("RawRecord", 1, 2), ("BadRecord", 2, 3), ("BadRecord", 3, 4),
        ("RawRecord", 4, 5),
    ]


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 1, "messages": [{"role": "user", "content": "hi"},\n {"role": "assistant"}]}\n',
        '{"turns": [[{"a": 1},\n {"b": 2}]]}\n',
        '{"conversation":\n  {"turns": [1, 2]}}\n',
        '{"id": 1, "messages": [\n  {"role": "user", "content": "hi"}\n]}\n',
    ],
)
def test_documents_of_two_or_three_lines_are_documents(tmp_path, text):
    p = write(tmp_path, "doc.json", text)
    assert values(p) == [(0, 1, json.loads(text))]
