"""The tokenizer's normalizer done in Python (convkit.normalise): when it is used, and that it gives
the ids of the tokenizer's own normalizer, added tokens and all."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers

from convkit.normalise import plain_normaliser
from convkit.tokens import TokenCounter

realdata = pytest.mark.realdata

SPACE = "\u2581"
EXAMPLE_TOKENIZER = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"


def llama_like(normalizer: object = None, added: list[AddedToken] | None = None) -> Tokenizer:
    """A small BPE tokenizer normalised as llama's is, with its three special tokens."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, SPACE: 3, "a": 4, "b": 5, "s": 6, "<": 7, ">": 8}
    vocab |= {"/": 9, f"{SPACE}a": 10, f"{SPACE}{SPACE}": 11, "ab": 12, f"{SPACE}ab": 13}
    merges = [(SPACE, "a"), (SPACE, SPACE), ("a", "b"), (f"{SPACE}a", "b")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True))
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


def without_normalizer(tok: Tokenizer) -> Tokenizer:
    bare = Tokenizer.from_str(tok.to_str())
    bare.normalizer = None
    return bare


@pytest.mark.parametrize("special", [False, True])
def test_tricky_texts_get_the_tokenizers_ids(special: bool) -> None:
    tok = llama_like()
    normalise = plain_normaliser(tok)
    assert normalise is not None
    assert ids(without_normalizer(tok), [normalise(t) for t in TRICKY], special) == ids(
        tok, TRICKY, special
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=f"<s/>unkab {SPACE}\n", max_size=24), min_size=1, max_size=8))
def test_any_text_gets_the_tokenizers_ids(texts: list[str]) -> None:
    tok = llama_like()
    normalise = plain_normaliser(tok)
    assert normalise is not None
    assert ids(without_normalizer(tok), [normalise(t) for t in texts]) == ids(tok, texts)


@realdata
@pytest.mark.parametrize("name", ["llama", "mistral-7b-v0.1"])
def test_real_tokenizers_get_their_own_ids(shared_data: Path, name: str) -> None:
    path = shared_data / "tokenizers" / name / "tokenizer.json"
    sample = shared_data / "sharegpt_cleaned" / "ShareGPT_V3_unfiltered_cleaned_split.sample400.json"
    records = json.loads(sample.read_text(encoding="utf-8"))
    texts = [t["value"] for r in records[:60] for t in r["conversations"]] + TRICKY
    tok = Tokenizer.from_file(str(path))
    normalise = plain_normaliser(tok)
    assert normalise is not None
    bare = without_normalizer(tok)
    for special in (False, True):
        assert ids(bare, [normalise(t) for t in texts], special) == ids(tok, texts, special)


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
    assert full.normalizer is not None
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
    assert counter.count(["hello world", "a <s> b"]) == [2, 5]
    assert counter.special_edges == ((1,), ())
