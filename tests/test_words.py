"""The word table (convkit._words and its twin): how it cuts texts into words, what it
remembers, and that a counter using it counts as the tokenizer does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_normalise import TRICKY, llama_like, real_turns
from tokenizers import Tokenizer

from convkit import _words_py
from convkit._backend import pure_python
from convkit.tokens import TokenCounter, _Shared

realdata = pytest.mark.realdata
SPACE = "\u2581"

try:
    from convkit import _words
except ImportError:  # the extension is not built: the twin alone is tested
    _words = None  # type: ignore[assignment]

BACKENDS = [pytest.param(_words_py, id="python")]
if _words is not None:
    BACKENDS.append(pytest.param(_words, id="cython"))


def cut(text: str, stops: str = "") -> list[str]:
    """The words of ``text`` as the table cuts it, the slow and obvious way: before each run
    of marks, and around each stop."""
    normalised = SPACE + text.replace(" ", SPACE) if text else ""
    words: list[str] = []
    for c in normalised:
        after_stop = words and len(words[-1]) == 1 and words[-1] in stops
        mark_after_text = c == SPACE and words and words[-1].strip(SPACE)
        if not words or c in stops or after_stop or mark_after_text:
            words.append(c)
        else:
            words[-1] += c
    return words


@pytest.mark.parametrize("impl", BACKENDS)
def test_new_words_come_once_in_the_order_met_and_known_ones_are_summed(impl) -> None:
    table = impl.WordCounts(SPACE)
    new = table.scan(["a b", "", "  x ", f"b{SPACE}a", "\n\t"])
    assert new == [f"{SPACE}a", f"{SPACE}b", f"{SPACE}{SPACE}{SPACE}x", SPACE, f"{SPACE}\n\t"]
    assert table.totals([1, 2, 3, 4, 5]) == [3, 0, 7, 3, 5]
    assert len(table) == 5
    assert table.scan(["b a", "a  a", "é"]) == [f"{SPACE}{SPACE}a", f"{SPACE}é"]
    assert table.totals([10, 20]) == [3, 11, 20]
    assert table.scan(["a b  a"]) == []
    assert table.totals([]) == [13]


@pytest.mark.parametrize("impl", BACKENDS)
def test_the_table_starts_again_past_its_limit_and_keeps_a_whole_batch(impl) -> None:
    table = impl.WordCounts(SPACE, 2)
    assert table.scan(["a b c"]) == [f"{SPACE}a", f"{SPACE}b", f"{SPACE}c"]  # over the limit
    assert table.totals([1, 2, 3]) == [6]
    assert len(table) == 3
    assert table.scan(["a"]) == [f"{SPACE}a"]  # forgotten at the start of this scan
    assert table.totals([5]) == [5]
    assert table.scan(["a"]) == []
    assert table.totals([]) == [5]


@pytest.mark.parametrize("impl", BACKENDS)
def test_a_scan_without_totals_is_forgotten(impl) -> None:
    table = impl.WordCounts(SPACE)
    table.scan(["a"])
    table.totals([1])
    table.scan(["b"])
    assert table.scan(["a b"]) == [f"{SPACE}a", f"{SPACE}b"]
    assert table.totals([7, 8]) == [15]


@pytest.mark.parametrize("impl", BACKENDS)
def test_misuse_is_a_clear_error(impl) -> None:
    with pytest.raises(ValueError) as e:
        impl.WordCounts("ab")
    assert str(e.value) == "the mark must be one character, got 'ab'"
    with pytest.raises(ValueError) as e:
        impl.WordCounts(SPACE, 0)
    assert str(e.value) == "limit must be at least 1, got 0"
    table = impl.WordCounts(SPACE)
    with pytest.raises(RuntimeError) as e:
        table.totals([])
    assert str(e.value) == "totals() needs a scan() first"
    with pytest.raises(TypeError) as e:
        table.scan(["a", None])
    assert str(e.value) == "texts to count must be str, got NoneType"
    assert len(table) == 0
    table.scan(["a b"])
    with pytest.raises(ValueError) as e:
        table.totals([1])
    assert str(e.value) == "expected 2 counts, got 1"
    assert len(table) == 0  # forgotten: a wrong answer must not be remembered
    table.scan(["a"])
    with pytest.raises(ValueError) as e:
        table.totals([-1])
    assert str(e.value) == "a token count must be in 0..2**31-1, got -1"
    assert table.scan(["a"]) == [f"{SPACE}a"]


TEXTS = st.lists(st.text(alphabet=f"ab {SPACE}\né中😀\x00", max_size=16), max_size=6)


def bitmap(chars: str) -> bytes:
    bits = bytearray(8192)
    for c in chars:
        bits[ord(c) >> 3] |= 1 << (ord(c) & 7)
    return bytes(bits)


def stops_of(bits: bytes) -> str:
    return "".join(chr(c) for c in range(0x10000) if bits[c >> 3] >> (c & 7) & 1)


@pytest.mark.parametrize("impl", BACKENDS)
def test_a_stop_is_a_word_alone_and_ends_the_word_before_it(impl) -> None:
    table = impl.WordCounts(SPACE, stops=bitmap("\n0é"))
    new = table.scan(["ab\nx 0c  ", "\n", "", " é", "10"])
    # "x" follows a stop: a word without a mark; "▁▁é": the marks, then the stop alone.
    assert new == [f"{SPACE}ab", "\n", "x", SPACE, "0", "c", f"{SPACE}{SPACE}", "é", f"{SPACE}1"]
    assert table.totals([1, 2, 3, 4, 5, 6, 7, 8, 9]) == [28, 6, 0, 15, 14]


@pytest.mark.parametrize("impl", BACKENDS)
def test_stops_are_a_bitmap_of_the_first_plane(impl) -> None:
    with pytest.raises(ValueError) as e:
        impl.WordCounts(SPACE, 3, b"\xff")
    assert str(e.value) == "stops must be 8192 bytes, got 1"


@pytest.mark.skipif(_words is None, reason="the extension is not built")
@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=5), st.integers(1, 8), st.text("ab\né中\x00", max_size=3))
def test_the_compiled_table_agrees_with_its_twin_and_the_plain_cut(batches, limit, stops) -> None:
    compiled = _words.WordCounts(SPACE, limit, bitmap(stops))
    twin = _words_py.WordCounts(SPACE, limit, bitmap(stops))
    weight = {}  # any count a word is given; a word's count is a function of the word
    for texts in batches:
        new = compiled.scan(texts)
        assert twin.scan(texts) == new
        assert len(set(new)) == len(new)
        counts = [weight.setdefault(w, len(weight) * 7 % 11) for w in new]
        totals = compiled.totals(counts)
        assert twin.totals(counts) == totals
        assert totals == [sum(weight[w] for w in cut(t, stops)) for t in texts]
        assert len(compiled) == len(twin)


# --- counters using the table -------------------------------------------------------------------


def counting(tok: Tokenizer) -> _Shared:
    shared = _Shared(Tokenizer.from_str(tok.to_str()), own=True)
    assert shared._words is not None
    return shared


def counts(tok: Tokenizer, texts: list[str]) -> list[int]:
    return [len(e) for e in tok.encode_batch(texts, add_special_tokens=False)]


compiled_only = pytest.mark.skipif(
    _words is None or pure_python(), reason="counters use the table only when it is compiled"
)


@compiled_only
def test_a_counter_counts_as_the_tokenizer_word_table_and_all() -> None:
    tok = llama_like()
    shared = counting(tok)
    expected = counts(tok, TRICKY)
    assert shared.count(TRICKY) == expected
    assert shared.count(TRICKY) == expected  # from the table now
    assert shared.count(TRICKY[::-1]) == expected[::-1]


@compiled_only
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet=f"<s/>unkab {SPACE}\nxé", max_size=24), max_size=8),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 6),
)
def test_any_texts_are_counted_as_the_tokenizer_counts_them(batches, limit) -> None:
    tok = llama_like()
    shared = counting(tok)
    shared._words = _words.WordCounts(SPACE, limit)  # small: starting again is exercised too
    for texts in batches:
        assert shared.count(texts) == counts(tok, texts)


@compiled_only
def test_a_word_of_marks_only_is_counted_alone() -> None:
    tok = llama_like()
    shared = counting(tok)
    texts = ["a ", "a  ", " ", "  ", "b   ", "ab  ab "]
    assert shared.count(texts) == counts(tok, texts)


@compiled_only
def test_a_text_the_tokenizer_refuses_leaves_the_table_empty_and_working() -> None:
    tok = llama_like()
    shared = counting(tok)
    assert shared.count(["a b"]) == [3]
    with pytest.raises(TypeError):
        shared.count(["ab", "b\ud800"])  # a lone surrogate: tokenizers takes no such str
    assert len(shared._words) == 0
    assert shared.count(["ab", "a b"]) == [1, 3]


@compiled_only
def test_threads_counting_with_one_table_get_the_tokenizers_counts() -> None:
    tok = llama_like()
    shared = counting(tok)
    texts = [("ab " * i + "b a" * (i % 3) + "<s>" * (i % 5 == 0)) for i in range(200)]
    expected = counts(tok, texts)
    got: list[list[int]] = []
    threads = [threading.Thread(target=lambda: got.append(shared.count(texts))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [expected] * 6


def test_the_twin_is_not_used_for_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVKIT_PUREPYTHON", "1")
    shared = _Shared(Tokenizer.from_str(llama_like().to_str()), own=True)
    assert shared._words is None
    assert shared.count(["a b", "<s>"]) == [3, 1]


@realdata
@compiled_only
@pytest.mark.parametrize("name", ["llama", "mistral-7b-v0.1"])
def test_real_tokenizers_count_real_turns_as_they_do(shared_data: Path, name: str) -> None:
    path = shared_data / "tokenizers" / name / "tokenizer.json"
    texts = real_turns(shared_data) + TRICKY
    tok = Tokenizer.from_file(str(path))
    counter = TokenCounter(path)
    assert counter._loaded()._words is not None
    expected = counts(tok, texts)
    half = len(texts) // 2
    assert counter.count(texts[:half]) + counter.count(texts[half:]) == expected
    assert counter.count(texts) == expected  # every word known by now


@realdata
@pytest.mark.parametrize("name", ["gpt2", "t5-small"])
def test_other_real_tokenizers_have_no_table(shared_data: Path, name: str) -> None:
    counter = TokenCounter(shared_data / "tokenizers" / name / "tokenizer.json")
    assert counter._loaded()._words is None


@compiled_only
def test_trained_counts_with_the_table_are_those_without(tmp_path: Path) -> None:
    from tokenizers import processors

    tok = llama_like()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    texts = ["a", "<s>a", "a</s>", "", "a  b", "<s>", "<s>a</s>", " b ", "x<s>y"] + TRICKY
    counter = TokenCounter(tmp_path / "tokenizer.json")
    shared = counter._loaded()
    assert shared._words is not None and counter.special_edges == ((1,), (2,))
    with_table = counter.count_trained(texts)
    assert with_table[:9] == [3, 3, 3, 2, 5, 2, 3, 5, 7]
    shared._words = None
    assert counter.count_trained(texts) == with_table


@compiled_only
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=f"<s/>unkab {SPACE}x", max_size=20), min_size=1, max_size=8))
def test_any_trained_counts_with_the_table_are_those_without(texts: list[str]) -> None:
    from tokenizers import processors

    tok = llama_like()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> <s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    counter = TokenCounter(tok)  # the caller's tokenizer: counted without the table
    assert counter._loaded()._words is None
    table = TokenCounter(Tokenizer.from_str(tok.to_str()))
    table._shared = _Shared(Tokenizer.from_str(tok.to_str()), own=True)
    assert table.special_edges == ((1, 1), (2,))
    assert table.count_trained(texts) == counter.count_trained(texts)


@realdata
@compiled_only
def test_real_trained_counts_with_the_table_are_those_without(llama_tokenizer: Path) -> None:
    texts = ["<s>[INST] hi [/INST]", "hello world", "", "a </s>"] + TRICKY
    counter = TokenCounter(llama_tokenizer)
    with_table = counter.count_trained(texts)
    assert with_table[:4] == [9, 3, 1, 4]
    counter._loaded()._words = None
    assert counter.count_trained(texts) == with_table


@compiled_only
def test_a_str_subclass_cannot_hide_an_added_token() -> None:
    class Blind(str):
        def __contains__(self, other: object) -> bool:
            return False

    tok = llama_like()
    shared = counting(tok)
    assert shared.count([Blind("a<s>b"), Blind("a b")]) == counts(tok, ["a<s>b", "a b"]) == [4, 3]


# --- stops: characters no merge can join, each a word alone ------------------------------------

BYTES = {f"<0x{b:02X}>": 21 + b for b in range(256)}  # ids follow with_stops's


def with_stops(**bpe: object) -> Tokenizer:
    """llama_like with "\n" and "c" as tokens no longer token holds (stops), "x" held by "xa"."""
    vocab = {"\n": 17, "c": 18, "x": 19, "xa": 20} | bpe.pop("vocab", {})  # type: ignore[operator]
    return llama_like(vocab=vocab, merges=[("x", "a")], **bpe)


def test_stops_are_the_tokens_no_longer_token_holds() -> None:
    from convkit.normalise import word_stops

    tok = with_stops()
    vocab = tok.get_vocab(with_added_tokens=False)
    assert stops_of(word_stops(tok, SPACE, vocab)) == "\nc"


def test_with_byte_fallback_every_character_no_longer_token_holds_is_a_stop() -> None:
    from convkit.normalise import word_stops

    tok = with_stops(vocab=BYTES, byte_fallback=True)
    stops = stops_of(word_stops(tok, SPACE, tok.get_vocab(with_added_tokens=False)))
    assert "\n" in stops and "c" in stops and "é" in stops and "中" in stops
    held = set("<unk>/s" + SPACE + "ab" + "xa" + " ")
    assert not held & set(stops)
    assert not set(map(chr, range(0xD800, 0xE000))) & set(stops)
    assert len(stops) == 0x10000 - 0x800 - len(held)


@pytest.mark.parametrize(
    "extra", [{"<0x41>b": 277}, {"<0x": 277, "41>": 278}], ids=["holds <0x", "two tokens"]
)
def test_byte_tokens_a_merge_could_reach_keep_their_characters_held(extra: dict) -> None:
    from convkit.normalise import word_stops

    tok = with_stops(vocab=BYTES | extra, byte_fallback=True)
    stops = stops_of(word_stops(tok, SPACE, tok.get_vocab(with_added_tokens=False)))
    assert stops == "\nc"  # no byte fallback assumed: only tokens no longer token holds


STOP_TEXTS = st.lists(
    st.text(alphabet=f"<s/>unkab {SPACE}\nxcé中😀0", max_size=24), min_size=1, max_size=8
)


@compiled_only
@settings(max_examples=300, deadline=None)
@given(STOP_TEXTS, st.booleans())
def test_texts_cut_at_stops_are_counted_as_the_tokenizer_counts_them(texts, byte) -> None:
    tok = with_stops(vocab=BYTES, byte_fallback=True) if byte else with_stops()
    shared = counting(tok)
    assert shared.count(texts) == counts(tok, texts)
    assert shared.count(texts[::-1]) == counts(tok, texts[::-1])


@compiled_only
def test_a_nul_mark_gets_another_separator(tmp_path: Path) -> None:
    from tokenizers import models, normalizers

    mark = "\x00"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, mark: 3, "a": 4, "b": 5, mark + "a": 6}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(mark, "a")], unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(mark), normalizers.Replace(" ", mark)])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    texts = ["a ", "b", "a  b", "a\x00 b", "  ", "\x00\x00a"]
    counter = TokenCounter(tmp_path / "tokenizer.json")
    assert counter._loaded()._words is not None
    assert counter.count(texts) == counts(tok, texts) == [2, 2, 4, 4, 3, 3]
