"""The tokenizer's normalizer done in Python (convkit.normalise): when it is used, and that it gives
the ids of the tokenizer's own normalizer, added tokens and all."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers

from convkit.normalise import plain_normaliser, word_splitter
from convkit.tokens import TokenCounter, _Shared

realdata = pytest.mark.realdata

SPACE = "\u2581"
EXAMPLE_TOKENIZER = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"


def llama_like(
    normalizer: object = None, added: list[AddedToken] | None = None, **bpe: object
) -> Tokenizer:
    """A small BPE tokenizer normalised as llama's is, with its three special tokens."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, SPACE: 3, "a": 4, "b": 5, "s": 6, "<": 7, ">": 8}
    vocab |= {"/": 9, f"{SPACE}a": 10, f"{SPACE}{SPACE}": 11, "ab": 12, f"{SPACE}ab": 13}
    vocab |= {f"{SPACE}{SPACE}a": 14, "bb": 15, "bbb": 16}
    merges = [(SPACE, "a"), (SPACE, SPACE), ("a", "b"), (f"{SPACE}a", "b"), (f"{SPACE}{SPACE}", "a")]
    merges += [("b", "b"), ("bb", "b")]
    vocab |= bpe.pop("vocab", {})  # type: ignore[arg-type]
    merges += bpe.pop("merges", [])  # type: ignore[operator]
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, **bpe)
    )
    if normalizer is None:
        normalizer = normalizers.Sequence(
            [normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)]
        )
    tok.normalizer = normalizer
    tok.add_special_tokens(added or ["<unk>", "<s>", "</s>"])
    return tok


def ids(tok: Tokenizer, texts: list[str], special: bool = False) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=special)]


# --- what the Python normaliser writes ---------------------------------------------------------


def test_the_normaliser_prepends_and_replaces_between_added_tokens() -> None:
    normalise = plain_normaliser(llama_like())
    assert normalise is not None
    assert normalise("") == ""
    assert normalise("a b") == f"{SPACE}a{SPACE}b"
    assert normalise(" ") == f"{SPACE}{SPACE}"
    assert normalise("a <s> b") == f"{SPACE}a{SPACE}<s>{SPACE}{SPACE}b"
    assert normalise("<s>") == "<s>"
    assert normalise("</s><s>x") == f"</s><s>{SPACE}x"
    assert normalise("<s") == f"{SPACE}<s"
    assert normalise("<<s>>") == f"{SPACE}<<s>{SPACE}>"


def test_the_steps_run_in_the_normalizers_order() -> None:
    replace_first = normalizers.Sequence(
        [normalizers.Replace(" ", "_"), normalizers.Prepend(" ")]
    )
    normalise = plain_normaliser(llama_like(replace_first))
    assert normalise is not None
    assert normalise("a b") == " a_b"
    only_prepend = plain_normaliser(llama_like(normalizers.Prepend(SPACE)))
    assert only_prepend is not None and only_prepend("a b") == f"{SPACE}a b"


@pytest.mark.parametrize(
    "normalizer",
    [
        normalizers.Sequence([normalizers.NFKC(), normalizers.Prepend(SPACE)]),
        normalizers.Replace(Regex(" +"), SPACE),
        normalizers.Replace("", SPACE),
        normalizers.Lowercase(),
        normalizers.Sequence([]),
    ],
    ids=["nfkc", "regex", "empty-pattern", "lowercase", "empty-sequence"],
)
def test_other_normalizers_stay_in_the_tokenizer(normalizer: object) -> None:
    assert plain_normaliser(llama_like(normalizer)) is None


@pytest.mark.parametrize(
    "token",
    [
        AddedToken("<x>", normalized=True, special=False),
        AddedToken("<x>", lstrip=True, special=True, normalized=False),
        AddedToken("<x>", rstrip=True, special=True, normalized=False),
        AddedToken("<x>", single_word=True, special=True, normalized=False),
        AddedToken(f"<{SPACE}>", special=True, normalized=False),
        AddedToken("< >", special=True, normalized=False),
    ],
    ids=["normalized", "lstrip", "rstrip", "single-word", "holds-the-space-mark", "holds-a-space"],
)
def test_added_tokens_matched_otherwise_keep_the_tokenizers_normalizer(token: AddedToken) -> None:
    assert plain_normaliser(llama_like(added=["<s>", token])) is None


def tiny(vocab: list[str], normalizer: object, added: list[str] | None = None) -> Tokenizer:
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=[]))
    tok.normalizer = normalizer
    if added:
        tok.add_special_tokens(added)
    return tok


@pytest.mark.parametrize(
    ("tok", "text"),
    [
        # " !" becomes "xy!", which holds "y!": the tokenizer does not look for it there.
        (tiny(["x", "y", "!"], normalizers.Replace(" ", "xy"), ["y!"]), " !"),
        # "a" becomes "xya" after "<s>": "<s>x" is found in the result, not in the text.
        (tiny(["x", "y", "a"], normalizers.Prepend("xy"), ["<s>", "<s>x"]), "<s>a"),
        # Deleting "-" joins "a-b" into the added token "ab".
        (tiny(["a", "b", "-"], normalizers.Replace("-", ""), ["ab"]), "a-b"),
        # Replacing "s" breaks "<s>".
        (tiny(["<", ">", "z"], normalizers.Replace("s", "z"), ["<s>"]), "<s>"),
    ],
    ids=["writes-into", "prepends-into", "deletes-between", "replaces-inside"],
)
def test_steps_that_could_make_or_break_an_added_token_keep_the_normalizer(
    tok: Tokenizer, text: str
) -> None:
    assert plain_normaliser(tok) is None
    shared = _Shared(Tokenizer.from_str(tok.to_str()), own=True)
    assert shared.normalise is None
    assert counted_ids(shared, [text]) == ids(tok, [text])


def test_a_text_a_replace_empties_gets_nothing_prepended() -> None:
    steps = [normalizers.Replace("a", ""), normalizers.Prepend(SPACE)]
    tok = tiny(["a", "b", SPACE], normalizers.Sequence(steps))
    normalise = plain_normaliser(tok)
    assert normalise is not None
    assert [normalise(t) for t in ["a", "aaa", "ab", ""]] == ["", "", f"{SPACE}b", ""]
    texts = ["a", "aaa", "ab", "ba b"]
    assert counted_ids(counting(tok, split=False), texts) == ids(tok, texts)


def test_no_normalizer_and_special_tokens_encoded_as_text_are_left_alone() -> None:
    assert plain_normaliser(Tokenizer.from_file(str(EXAMPLE_TOKENIZER))) is None
    tok = llama_like()
    tok.encode_special_tokens = True
    assert plain_normaliser(tok) is None


# --- the same ids as the tokenizer's own normalizer --------------------------------------------

TRICKY = [
    "", " ", "  ", "a", " a", "a ", "a  b", "a <s> b", "<s>", "</s><s>", "<unk>", "<s", "s>",
    "<<s>>", SPACE, f"{SPACE}a b", "x</s>y", "<s> ", " <s>", "\t\n x", "é ü 😀", "<s><s>",
    "< s>", "<s>a</s>", "a  <unk>  b", "ab ab  ab",
]


def counting(tok: Tokenizer, split: bool = True) -> _Shared:
    """The tokenizer as a counter uses it: its normalizer in Python, its text cut into words."""
    shared = _Shared(Tokenizer.from_str(tok.to_str()), own=True)
    assert shared.normalise is not None
    assert (shared.counting.pre_tokenizer is not None) == split
    return shared


def counted_ids(shared: _Shared, texts: list[str], special: bool = False) -> list[list[int]]:
    return [e.ids for e in shared.encode(texts, add_special_tokens=special)]


@pytest.mark.parametrize("special", [False, True])
def test_tricky_texts_get_the_tokenizers_ids(special: bool) -> None:
    tok = llama_like()
    assert counted_ids(counting(tok), TRICKY, special) == ids(tok, TRICKY, special)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=f"<s/>unkab {SPACE}\n", max_size=24), min_size=1, max_size=8))
def test_any_text_gets_the_tokenizers_ids(texts: list[str]) -> None:
    tok = llama_like()
    assert counted_ids(counting(tok), texts) == ids(tok, texts)


# --- cutting the text into words ---------------------------------------------------------------


def test_words_start_at_each_run_of_marks() -> None:
    split = word_splitter(llama_like())
    assert split is not None
    words = split.pre_tokenize_str(f"{SPACE}ab{SPACE}{SPACE}a{SPACE}<s>b{SPACE}")
    assert [w for w, _ in words] == [f"{SPACE}ab", f"{SPACE}{SPACE}a", f"{SPACE}<s>b", SPACE]


@pytest.mark.parametrize(
    "setting",
    [
        ("dropout", 0.5),
        ("continuing_subword_prefix", "##"),
        ("end_of_word_suffix", "</w>"),
        ("ignore_merges", True),
    ],
    ids=lambda s: s[0] if isinstance(s, tuple) else str(s),
)
def test_models_that_treat_words_apart_are_not_cut(setting: tuple[str, object]) -> None:
    tok = llama_like()
    setattr(tok.model, *setting)
    assert word_splitter(tok) is None


def test_a_token_with_the_mark_after_a_character_keeps_the_text_whole() -> None:
    tok = llama_like(vocab={f"b{SPACE}": 17}, merges=[("b", SPACE)])
    assert word_splitter(tok) is None
    texts = [*TRICKY, f"b{SPACE}b", "b b", "bb  b"]
    assert ids(tok, ["b b"]) == [[3, 17, 5]]  # a token across where a word would start
    assert counted_ids(counting(tok, split=False), texts) == ids(tok, texts)


def test_a_model_that_drops_unknown_characters_is_not_cut() -> None:
    # Without an unknown token "x" is dropped and the marks around it meet: "▁▁" is a token.
    vocab = {"a": 0, SPACE: 1, f"{SPACE}{SPACE}": 2}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(SPACE, SPACE)]))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)]
    )
    assert word_splitter(tok) is None
    assert ids(tok, ["a x a"]) == [[1, 0, 2, 0]]
    texts = ["a x a", "x a", "a  x", "xx"]
    assert counted_ids(counting(tok, split=False), texts) == ids(tok, texts)


def test_other_models_and_pre_tokenizers_are_not_cut() -> None:
    tok = llama_like()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    assert word_splitter(tok) is None
    assert word_splitter(llama_like(normalizers.Prepend(SPACE))) is None  # no mark for a space
    level = Tokenizer(models.WordLevel(vocab={SPACE: 0, "<unk>": 1}, unk_token="<unk>"))
    level.normalizer = normalizers.Replace(" ", SPACE)
    assert word_splitter(level) is None


def real_turns(shared_data: Path, records: int | None = None) -> list[str]:
    """The turns of the first ``records`` conversations of the cleaned ShareGPT sample."""
    sample = shared_data / "sharegpt_cleaned" / "ShareGPT_V3_unfiltered_cleaned_split.sample400.json"
    data = json.loads(sample.read_text(encoding="utf-8"))
    return [t["value"] for r in data[:records] for t in r["conversations"]]


@realdata
@pytest.mark.parametrize("name", ["llama", "mistral-7b-v0.1"])
def test_real_tokenizers_get_their_own_ids(shared_data: Path, name: str) -> None:
    path = shared_data / "tokenizers" / name / "tokenizer.json"
    texts = real_turns(shared_data, 60) + TRICKY
    tok = Tokenizer.from_file(str(path))
    shared = counting(tok)
    for special in (False, True):
        assert counted_ids(shared, texts, special) == ids(tok, texts, special)


@realdata
@pytest.mark.parametrize("name", ["gpt2", "t5-small"])
def test_other_real_tokenizers_keep_their_normalizer(shared_data: Path, name: str) -> None:
    tok = Tokenizer.from_file(str(shared_data / "tokenizers" / name / "tokenizer.json"))
    assert plain_normaliser(tok) is None


# --- the counter -------------------------------------------------------------------------------


def save(tok: Tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def test_a_counter_counts_as_the_tokenizer_and_hands_out_the_tokenizer_as_saved(
    tmp_path: Path,
) -> None:
    tok = llama_like()
    path = save(tok, tmp_path)
    counter = TokenCounter(path)
    assert counter.count(TRICKY) == [len(i) for i in ids(tok, TRICKY)]
    assert counter.count_trained(["a", "<s>a", "a  b"]) == [1, 2, 3]
    assert counter.special_edges == ((), ())  # this small tokenizer has no post-processor
    full = counter.tokenizer
    assert full.normalizer is not None and full.pre_tokenizer is None
    assert full.encode("a b").tokens == [f"{SPACE}a", f"{SPACE}", "b"]
    assert TokenCounter(str(path)).tokenizer is full
    assert pickle.loads(pickle.dumps(counter)).tokenizer is full


def test_a_callers_tokenizer_is_not_changed(tmp_path: Path) -> None:
    tok = llama_like()
    counter = TokenCounter(tok)
    assert counter.count(["a b"]) == [3]
    assert counter.tokenizer is tok
    assert tok.normalizer is not None
    # Unpickled, the counter's tokenizer is its own: counted the fast way, handed out whole.
    again = pickle.loads(pickle.dumps(counter))
    assert again.count(TRICKY) == counter.count(TRICKY)
    assert again.tokenizer.encode("a b").tokens == tok.encode("a b").tokens


@realdata
def test_a_llama_counter_hands_out_llamas_tokenizer(llama_tokenizer: Path) -> None:
    counter = TokenCounter(llama_tokenizer)
    assert counter.tokenizer.encode("hello world").tokens == ["<s>", "▁hello", "▁world"]
    assert counter.tokenizer.pre_tokenizer is None
    assert counter.count(["hello world", "a <s> b"]) == [2, 5]
    assert counter.special_edges == ((1,), ())


@pytest.mark.parametrize("bad", [None, 3, ("a", "b")])
def test_a_text_that_is_not_a_string_is_a_clear_error(bad: object) -> None:
    counter = TokenCounter(llama_like())
    counter = pickle.loads(pickle.dumps(counter))  # its own copy: the fast way
    with pytest.raises(TypeError) as e:
        counter.count(["a", bad])  # type: ignore[list-item]
    assert str(e.value) == f"texts to count must be str, got {type(bad).__name__}"


def test_threads_of_an_unpickled_counter_share_one_tokenizer() -> None:
    import threading

    counter = pickle.loads(pickle.dumps(TokenCounter(llama_like())))
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(counter._loaded())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)
