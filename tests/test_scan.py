"""The compiled scans agree with their pure-Python twin, and the twin is right.

``element_end`` is checked against the standard decoder (every element of an array it splits
must be exactly the element ``json`` sees), ``normalised_utf8``, ``content_frames`` and
``contains_folded`` against their definitions. With
``CONVKIT_REQUIRE_EXT=1`` (CI) a missing extension fails the agreement tests instead of
skipping them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convkit import _scan_py, scan

REQUIRE_EXT = os.environ.get("CONVKIT_REQUIRE_EXT", "") not in ("", "0")

try:
    from convkit import _scan
except ImportError as e:
    _scan = None
    _IMPORT_ERROR = str(e)


def compiled():
    if _scan is None:
        if REQUIRE_EXT:
            pytest.fail(f"CONVKIT_REQUIRE_EXT=1 but convkit._scan is not built: {_IMPORT_ERROR}")
        pytest.skip(f"convkit._scan is not built ({_IMPORT_ERROR})")
    return _scan


def test_the_compiled_scans_are_in_use_in_ci():
    if not REQUIRE_EXT:
        pytest.skip("set CONVKIT_REQUIRE_EXT=1 to require the compiled scans (CI does)")
    assert scan.BACKEND == "cython"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(codec="utf-8")),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet='ab"\\{}[]é', max_size=4), inner, max_size=4),
    max_leaves=12,
)


def split_elements(buf: bytes, element_end) -> list[bytes]:
    """The array's elements as the reader finds them (the input is a JSON array of objects,
    arrays and strings, separated by ', ')."""
    out, pos = [], 1
    while buf[pos : pos + 1] != b"]":
        end, _, _, _ = element_end(buf, pos, 0)
        assert end > pos
        out.append(buf[pos:end])
        pos = end + 2 if buf[end : end + 2] == b", " else end
    return out


@given(st.lists(st.lists(json_values) | st.dictionaries(st.text(), json_values) | st.text()))
@settings(max_examples=300, deadline=None)
def test_twin_splits_arrays_into_the_elements_json_sees(elements):
    for ensure_ascii in (True, False):
        buf = json.dumps(elements, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
        got = split_elements(buf, _scan_py.element_end)
        assert [json.loads(g.decode("utf-8", "surrogatepass")) for g in got] == elements


_BYTES = st.binary(max_size=64) | st.text(alphabet='0123456789{}[]",\\ a', max_size=80).map(
    str.encode
)


@given(_BYTES, st.integers(0, 64), st.integers(0, 3), st.booleans())
@settings(max_examples=500, deadline=None)
def test_compiled_element_end_agrees_with_the_twin_on_any_bytes(data, i, depth, long_number):
    i = min(i, len(data))
    expected = _scan_py.element_end(data, i, depth, long_number)
    assert compiled().element_end(data, i, depth, long_number) == expected
    assert compiled().element_end(bytearray(data), i, depth, long_number) == expected


@given(st.lists(st.sampled_from([b"\\", b'"', b"a", b"}", b"\n"]), max_size=60), st.integers(0, 3))
@settings(max_examples=500, deadline=None)
def test_compiled_element_end_agrees_on_runs_of_backslashes(parts, depth):
    # The compiled scan finds quotes by memchr and looks back at the run of backslashes.
    data = b'"' + b"".join(parts)
    assert compiled().element_end(data, 0, depth) == _scan_py.element_end(data, 0, depth)


@given(st.binary(max_size=64).map(lambda b: b.replace(b"\x00", b"\n")), st.data())
@settings(max_examples=300, deadline=None)
def test_compiled_count_newlines_agrees_with_the_twin(data, draw):
    start = draw.draw(st.integers(0, len(data)))
    end = draw.draw(st.integers(start, len(data)))
    expected = data.count(b"\n", start, end)
    assert _scan_py.count_newlines(data, start, end) == expected
    assert compiled().count_newlines(data, start, end) == expected
    assert compiled().count_newlines(bytearray(data), start, end) == expected


@pytest.mark.parametrize("backend", ["twin", "compiled"])
def test_count_newlines_refuses_a_range_outside_the_buffer(backend):
    f = _scan_py.count_newlines if backend == "twin" else compiled().count_newlines
    assert f(b"a\nb\n", 0, 4) == 2
    assert f(b"", 0, 0) == 0
    with pytest.raises(ValueError, match=r"^bad range: 2 to 5 of 4$"):
        f(b"a\nb\n", 2, 5)
    with pytest.raises(ValueError, match=r"^bad range: 3 to 2 of 4$"):
        f(b"a\nb\n", 3, 2)


@given(_BYTES)
@settings(max_examples=500, deadline=None)
def test_compiled_has_long_number_agrees_with_the_twin(data):
    assert compiled().has_long_number(data) == _scan_py.has_long_number(data)
    assert _scan_py.has_long_number(data) == any(
        len(run) >= 19 for run in re.findall(rb"[0-9]+", data)
    )


@given(st.lists(st.dictionaries(st.text(alphabet='a"\\{}', max_size=3), json_values, max_size=3)))
@settings(max_examples=200, deadline=None)
def test_a_cut_element_resumes_where_the_scan_stopped(elements):
    buf = json.dumps(elements).encode()
    full = split_elements(buf, _scan_py.element_end)
    # Feed the first element a byte at a time: the resumed scan finds the same end.
    if not full:
        return
    pos, resume, depth, end, long = 1, 1, 0, -1, False
    for cut in range(2, len(buf) + 1):
        end, resume, depth, long = _scan_py.element_end(buf[:cut], resume, depth, long)
        if end >= 0:
            break
    assert buf[pos:end] == full[0]


@pytest.mark.parametrize(
    ("data", "i", "depth", "expected"),
    [
        (b'{"a": "}"}', 0, 0, (10, 10, 0, False)),  # a bracket inside a string does not count
        (b'{"a": "\\"}"}', 0, 0, (12, 12, 0, False)),  # nor does an escaped quote end the string
        (b'{"a": "\\\\"}', 0, 0, (11, 11, 0, False)),  # an escaped backslash does not escape it
        (b'{"a": "unfin', 0, 0, (-1, 6, 1, False)),  # resume at the string the buffer cuts
        (b'{"a": [1, 2', 0, 0, (-1, 10, 2, False)),  # ... or at the digits it cuts
        (b'"a string", 1', 0, 0, (10, 10, 0, False)),  # a string element ends at its quote
        (b'{"a": 1]', 0, 0, (8, 8, 0, False)),  # a mismatched bracket ends it; the decoder fails
        (b"", 0, 0, (-1, 0, 0, False)),
        (b'{"n": 1234567890123456789}', 0, 0, (26, 26, 0, True)),  # 19 digits: json's call
        (b'{"n": 123456789012345678}', 0, 0, (25, 25, 0, False)),
        (b'{"s": "1234567890123456789"}', 0, 0, (28, 28, 0, False)),  # in a string: orjson's
        (b'[1.234567890123456789]', 0, 0, (22, 22, 0, False)),  # a fraction is a float anyway
    ],
)
def test_element_end_cases(data, i, depth, expected):
    assert _scan_py.element_end(data, i, depth) == expected
    if _scan is not None:
        assert _scan.element_end(data, i, depth) == expected


@pytest.mark.parametrize("backend", ["python", "compiled"])
def test_element_end_refuses_a_bad_state(backend):
    f = _scan_py.element_end if backend == "python" else compiled().element_end
    with pytest.raises(ValueError, match=r"^bad scan state: position 5 of 2, depth 0$"):
        f(b"{}", 5, 0)
    with pytest.raises(ValueError, match=r"^bad scan state: position 0 of 2, depth -1$"):
        f(b"{}", 0, -1)


def test_normalised_utf8_examples():
    text = " héllo\u3000 wörld\U0001f600 \ud800\tx\x1c\n y \u2028"
    expected = "héllo wörld\U0001f600 \ud800 x y".encode("utf-8", "surrogatepass")
    assert _scan_py.normalised_utf8(text) == expected
    assert compiled().normalised_utf8(text) == expected
    assert compiled().normalised_utf8("") == b""
    assert compiled().normalised_utf8(" \n\t ") == b""


@given(st.text(alphabet=st.characters(codec=None, categories=None)))
@settings(max_examples=500, deadline=None)
def test_compiled_normalised_utf8_agrees_with_the_twin(text):
    assert compiled().normalised_utf8(text) == _scan_py.normalised_utf8(text)


@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200b\u3000ab"))
@settings(max_examples=300, deadline=None)
def test_compiled_normalised_utf8_agrees_on_white_space_runs(text):
    assert compiled().normalised_utf8(text) == _scan_py.normalised_utf8(text)


@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x00\x1b!a~\x7f", max_size=80))
@settings(max_examples=1000, deadline=None)
def test_compiled_normalised_utf8_agrees_on_ascii_text(text):
    # ASCII text is scanned sixteen bytes at a time: runs longer and shorter than sixteen, and
    # every ASCII white space, and controls that are not white space (copied as they are), at
    # every offset of a block.
    assert compiled().normalised_utf8(text) == _scan_py.normalised_utf8(text)


class _T:
    """A turn as content_frames reads it."""

    def __init__(self, role, content, meta=None):
        self.role, self.content, self.meta = role, content, meta


def _extras_of(t):
    return t.meta.get("extras")


@pytest.mark.parametrize("module", ["twin", "compiled"])
def test_content_frames_examples(module):
    frames = (_scan_py if module == "twin" else compiled()).content_frames
    turns = [
        _T("user", "  a\n\tb "),
        _T("rôle", "x\u3000y", {"from": "developer"}),  # metadata without extras
        _T("assistant", "", {"extras": b'{"k":1}'}),
    ]
    def h(text):
        return hashlib.sha256(text).digest()

    assert frames(turns, _extras_of) == (
        b"\0\0\0\0\0\0\0\x04user" + b"\0\0\0\0\0\0\0\x20" + h(b"a b")
        + b"\0\0\0\0\0\0\0\x05r\xc3\xb4le" + b"\0\0\0\0\0\0\0\x20" + h(b"x y")
        + b"\0\0\0\0\0\0\0\x09assistant" + b"\x80\0\0\0\0\0\0\x20" + h(b"")
        + b"\0\0\0\0\0\0\0\x07" + b'{"k":1}'
    )
    assert frames([], _extras_of) == b""
    # extras_of is asked only about turns with metadata.
    assert frames([_T("user", "a")], None) == (
        b"\0\0\0\0\0\0\0\x04user\0\0\0\0\0\0\0\x20" + h(b"a")
    )
    # A known digest is taken for that very text object only.
    text = "a  b"
    fake = b"\xff" * 32
    assert frames([_T("user", text)], None, {id(text): (text, fake)}).endswith(fake)
    other = "".join(["a", "  b"])
    assert frames([_T("user", other)], None, {id(text): (text, fake)}).endswith(h(b"a b"))


@pytest.mark.parametrize("module", ["twin", "compiled"])
def test_content_frames_errors(module):
    frames = (_scan_py if module == "twin" else compiled()).content_frames
    with pytest.raises(TypeError, match=r"^expected a str, got NoneType$"):
        frames([_T("user", None)], _extras_of)
    with pytest.raises(TypeError, match=r"^expected a str role, got int$"):
        frames([_T(1, "a")], _extras_of)
    with pytest.raises(TypeError, match=r"^expected extras as bytes, got str$"):
        frames([_T("user", "a", {"extras": "x"})], _extras_of)
    with pytest.raises(ZeroDivisionError):
        frames([_T("user", "a", {"extras": b""})], lambda t: 1 / 0)

    class Lying(bytes):
        def __len__(self):
            return 40

    with pytest.raises(TypeError, match=r"^expected extras as bytes, got Lying$"):
        frames([_T("user", "a", {"extras": Lying(b"ab")})], _extras_of)


_TURN_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40) | st.text(
    alphabet=" \t\na~\x1c", max_size=40
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["user", "assistant", "système", "\ud800"]),
            _TURN_TEXT,
            st.one_of(st.none(), st.binary(max_size=20)),
        ),
        max_size=12,
    ),
    st.integers(0, 3000),
)
@settings(max_examples=300, deadline=None)
def test_compiled_content_frames_agrees_with_the_twin(rows, pad):
    # A long turn now and then makes the buffer grow mid-conversation.
    turns = [_T(r, c, None if x is None else {"extras": x}) for r, c, x in rows]
    turns.append(_T("user", "w " * pad))
    assert compiled().content_frames(turns, _extras_of) == _scan_py.content_frames(
        turns, _extras_of
    )


@pytest.mark.parametrize("module", ["twin", "compiled"])
def test_contains_folded_examples(module):
    f = _scan_py.contains_folded if module == "twin" else compiled().contains_folded
    words = ("openai", "chatgpt")
    assert f("Ask OpenAI", words) is True
    assert f("ask CHATGPT.", words) is True
    assert f("open ai, chat gpt", words) is False
    assert f("OpenAI — “quoted”", words) is True  # not ASCII, no character folds to ASCII
    assert f("Cla\u00df", ("class",)) is True  # ß folds to ss
    assert f("\u212a", ("k",)) is True  # the Kelvin sign folds to k
    assert f("\ufb01ne", ("fine",)) is True  # the ligature fi
    assert f("", words) is False
    assert f("opena", words) is False  # shorter than any word
    assert f("xopenai", words) is True
    assert f("anything", ()) is False
    assert f("anything", ("",)) is True  # as "" in text
    assert f("Palm", ("Palm",)) is False  # a word with a capital never matches folded text


@pytest.mark.parametrize("module", ["twin", "compiled"])
def test_contains_folded_refuses_what_it_cannot_search(module):
    f = _scan_py.contains_folded if module == "twin" else compiled().contains_folded
    with pytest.raises(ValueError, match=r"^expected ASCII words, got 'caf\xe9'$"):
        f("café", ("café",))
    with pytest.raises(TypeError, match=r"^expected a str, got bytes$"):
        f(b"openai", ("openai",))
    # Every word is checked, before any answer and however many there are.
    with pytest.raises(ValueError, match=r"^expected ASCII words, got 5$"):
        f("x", ("", 5))
    with pytest.raises(ValueError, match=r"^expected ASCII words, got 'é'$"):
        f("x", tuple("abcdefghijklmnopqrstuvwxyzabcdefghij") + ("é",))


@pytest.mark.parametrize("module", ["twin", "compiled"])
def test_contains_folded_takes_any_str_and_any_sequence_of_words(module):
    f = _scan_py.contains_folded if module == "twin" else compiled().contains_folded

    class Text(str):
        pass

    assert f(Text("Straße"), ["ss"]) is True
    assert f(Text("OPENAI"), ["openai"]) is True
    assert f(Text("123"), list("abcdefghijklmnopqrstuvwxyzabcdefghij")) is False
    assert f(Text("Z"), list("abcdefghijklmnopqrstuvwxyzabcdefghij")) is True


def test_the_characters_that_fold_to_ascii_are_all_listed():
    listed = compiled().FOLDS_TO_ASCII
    found = "".join(
        chr(c) for c in range(0x80, 0x110000) if any(f < "\x80" for f in chr(c).casefold())
    )
    assert listed == found


_FOLDING = "aAbBcCiIkKnNsStT \n.-\xe9\xdf\u0130\u0131\u017f\u212a\ufb01\ufb06\u2019\U0001f600"


@given(
    st.text(alphabet=_FOLDING, max_size=40),
    st.lists(st.text(alphabet="abcikns -.AK", min_size=0, max_size=4), max_size=5),
)
@settings(max_examples=1000, deadline=None)
def test_compiled_contains_folded_agrees_with_the_twin(text, words):
    words = tuple(words)
    assert compiled().contains_folded(text, words) == _scan_py.contains_folded(text, words)


@given(
    st.text(max_size=60),
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=3), max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_compiled_contains_folded_agrees_on_many_words(text, words):
    # Over 32 words the compiled scan case-folds, as the twin does.
    words = tuple(words)
    assert compiled().contains_folded(text, words) == _scan_py.contains_folded(text, words)


@given(
    st.text(alphabet="oOpPeEnNaAiIcChHtTgG .@`-", max_size=140),
    st.lists(st.text(alphabet="openaichtg-@", min_size=1, max_size=7), min_size=1, max_size=3),
    st.integers(0, 140),
    st.booleans(),
)
@settings(max_examples=1000, deadline=None)
def test_compiled_contains_folded_agrees_on_planted_words(text, words, at, upper):
    # Texts longer than thirty-two (AVX2) and sixteen (SSE2) positions plus a word, so that
    # both searches run, with a word planted (in either case) at any position, across their
    # steps' edges. "@" and "`" differ only in the case bit, which the searches set aside
    # before comparing whole; a word's first, second and last bytes pick the candidates.
    words = tuple(words)
    planted = words[0].upper() if upper else words[0]
    text = text[:at] + planted + text[at:]
    assert compiled().contains_folded(text, words) == _scan_py.contains_folded(text, words)
    assert compiled().contains_folded(text, words)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libcrypto is looked up on Linux")
def test_libcrypto_is_found_through_hashlib_and_gives_its_digests():
    module = compiled()
    import _hashlib

    from convkit import sha256

    found = sha256.functions()
    assert found is not None, f"no SHA256_* found through {_hashlib.__file__}"
    assert found == module.symbols(_hashlib.__file__, sha256._NAMES)
    for data in (b"", b"convkit", bytes(range(256)) * 4099):
        assert module.sha256_by(found, data) == hashlib.sha256(data).digest()
    # Turned on: the thread's digest function is bound to them.
    assert module.digest_function() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libcrypto is looked up on Linux")
def test_symbols_loads_nothing_and_needs_every_name(tmp_path):
    module = compiled()
    import _hashlib

    # A copy of hashlib's module is a library the process has not loaded: it stays so.
    copy = tmp_path / os.path.basename(_hashlib.__file__)
    copy.write_bytes(Path(_hashlib.__file__).read_bytes())
    assert module.symbols(str(copy), ("SHA256_Init",)) is None
    assert str(copy) not in Path("/proc/self/maps").read_text()
    assert module.symbols(str(tmp_path / "libnothing.so"), ("SHA256_Init",)) is None
    assert module.symbols(_hashlib.__file__, ("SHA256_Init", "convkit_no_such_name")) is None


def test_hashlib_and_libcrypto_give_the_same_frames():
    module = compiled()
    turns = [_T("user", " a\u3000b "), _T("assistant", "\ud800 x"), _T("user", "é" * 5000)]
    bound = module.bind_sha256(None)
    try:
        by_hashlib = module.content_frames(turns, _extras_of)
    finally:
        module.bind_sha256(bound)
    assert module.content_frames(turns, _extras_of) == by_hashlib
    assert by_hashlib == _scan_py.content_frames(turns, _extras_of)
