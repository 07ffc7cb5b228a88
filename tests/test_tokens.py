"""Loading tokenizers and counting tokens, with the real tokenizer.json files in shared/data."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from convkit import tokens
from convkit.errors import ConfigError
from convkit.tokens import TokenCounter, load_tokenizer

realdata = pytest.mark.realdata

TOKENIZERS = ["llama", "gpt2", "mistral-7b-v0.1", "t5-small"]


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    """Real turns (prose, code, several scripts), many over 50 tokens, and near-empty ones."""
    path = shared_data / "sharegpt_cleaned" / "ShareGPT_V3_unfiltered_cleaned_split.sample400.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    out = [t["value"] for r in records[:40] for t in r["conversations"]]
    return [*out, "", " ", "naïve café — 東京 🙂"]


def reference(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    return tok


def with_settings(src: Path, dst_dir: Path, **settings: object) -> Path:
    """A copy of ``src`` tokenizer.json with top-level settings (truncation, padding) replaced."""
    data = json.loads(src.read_text(encoding="utf-8"))
    data.update(settings)
    dst = dst_dir / "tokenizer.json"
    dst.write_text(json.dumps(data), encoding="utf-8")
    return dst


# --- counting ----------------------------------------------------------------------------------


@realdata
@pytest.mark.parametrize("name", TOKENIZERS)
def test_count_is_the_real_token_count(shared_data: Path, texts: list[str], name: str) -> None:
    path = shared_data / "tokenizers" / name / "tokenizer.json"
    tok = reference(path)
    expected = [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    assert TokenCounter(str(path)).count(texts) == expected


@realdata
def test_count_of_nothing_is_empty(llama_tokenizer: Path) -> None:
    assert TokenCounter(llama_tokenizer).count([]) == []


@realdata
def test_count_accepts_any_iterable_of_texts(llama_tokenizer: Path) -> None:
    counter = TokenCounter(llama_tokenizer)
    assert counter.count(t for t in ("a b", "c")) == counter.count(["a b", "c"])


@realdata
@pytest.mark.parametrize(("name", "expected"), [("llama", 1), ("gpt2", 0), ("t5-small", 1)])
def test_special_tokens_is_what_the_post_processor_adds(
    shared_data: Path, name: str, expected: int
) -> None:
    assert TokenCounter(shared_data / "tokenizers" / name).special_tokens == expected


# --- neutralised settings ----------------------------------------------------------------------


@realdata
def test_truncation_in_tokenizer_json_is_neutralised(llama_tokenizer: Path, tmp_path: Path) -> None:
    truncation = {"direction": "Right", "max_length": 5, "strategy": "LongestFirst", "stride": 0}
    path = with_settings(llama_tokenizer, tmp_path, truncation=truncation)
    text = "one two three four five six seven eight nine ten"
    assert Tokenizer.from_file(str(path)).encode(text, add_special_tokens=False).ids[5:] == []
    assert TokenCounter(path).count([text]) == [10]


@realdata
def test_gpt2_shipped_truncation_does_not_cap_counts(gpt2_tokenizer: Path) -> None:
    # This tokenizer.json, as published, truncates to 50 tokens.
    assert json.loads(gpt2_tokenizer.read_text(encoding="utf-8"))["truncation"]["max_length"] == 50
    assert TokenCounter(gpt2_tokenizer).count([" word" * 80]) == [80]


@realdata
def test_padding_in_tokenizer_json_is_neutralised(llama_tokenizer: Path, tmp_path: Path) -> None:
    padding = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "<unk>",
    }
    path = with_settings(llama_tokenizer, tmp_path, padding=padding)
    batch = ["a", "one two three"]
    padded = Tokenizer.from_file(str(path)).encode_batch(batch, add_special_tokens=False)
    assert [len(e) for e in padded] == [3, 3]
    assert TokenCounter(path).count(batch) == [1, 3]


@realdata
def test_loaded_tokenizer_is_used_without_changing_it(gpt2_tokenizer: Path) -> None:
    tok = Tokenizer.from_file(str(gpt2_tokenizer))
    counter = TokenCounter(tok)
    assert counter.count([" word" * 80]) == [80]
    assert tok.truncation is not None and tok.truncation["max_length"] == 50


# --- loading and its errors --------------------------------------------------------------------


@realdata
def test_directory_holding_a_tokenizer_json_loads(shared_data: Path) -> None:
    assert load_tokenizer(str(shared_data / "tokenizers" / "llama")).get_vocab_size() == 32000


def test_directory_without_tokenizer_json_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_tokenizer(str(tmp_path))
    assert (
        str(e.value)
        == f"cannot load tokenizer {str(tmp_path)!r}: the directory has no tokenizer.json"
    )


def test_invalid_tokenizer_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"x": 1}', encoding="utf-8")
    with pytest.raises(Exception) as original:
        Tokenizer.from_file(str(bad))
    with pytest.raises(ConfigError) as e:
        load_tokenizer(str(bad))
    assert str(e.value) == (
        f"cannot load tokenizer {str(bad)!r}: "
        f"{bad} is not a valid tokenizer.json ({original.value})"
    )


@pytest.mark.parametrize("spec", ["missing/tokenizer.json", "./missing", "/no/such/dir"])
def test_missing_path_is_a_config_error_without_a_hub_lookup(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens.Tokenizer, "from_pretrained", _no_network)
    with pytest.raises(ConfigError) as e:
        load_tokenizer(spec)
    assert str(e.value) == f"cannot load tokenizer {spec!r}: no such file or directory"


def _no_network(name: str) -> Tokenizer:
    raise OSError(f"no network to fetch {name}")


def test_hub_failure_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens.Tokenizer, "from_pretrained", _no_network)
    with pytest.raises(ConfigError) as e:
        load_tokenizer("org/model")
    assert str(e.value) == (
        "cannot load tokenizer 'org/model': not a tokenizer.json file or directory, "
        "and loading it from the hub failed (no network to fetch org/model)"
    )


@realdata
def test_hub_tokenizer_is_neutralised_too(
    gpt2_tokenizer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = Tokenizer.from_file(str(gpt2_tokenizer))  # carries truncation to 50
    monkeypatch.setattr(tokens.Tokenizer, "from_pretrained", lambda name: shipped)
    assert load_tokenizer("gpt2").truncation is None


def test_empty_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        load_tokenizer("")
    assert str(e.value) == "tokenizer must be a tokenizer.json path or a hub name, got ''"


# --- worker processes --------------------------------------------------------------------------


@realdata
def test_counter_pickles_as_its_spec(llama_tokenizer: Path, texts: list[str]) -> None:
    counter = TokenCounter(str(llama_tokenizer))
    data = pickle.dumps(counter)
    assert len(data) < 1000  # the spec, not the 1.4 MB vocabulary
    assert pickle.loads(data).count(texts) == counter.count(texts)


@realdata
def test_counter_from_relative_path_reloads_in_another_directory(
    llama_tokenizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(llama_tokenizer.parent.parent)
    data = pickle.dumps(TokenCounter("llama/tokenizer.json"))
    monkeypatch.chdir(tmp_path)
    assert pickle.loads(data).count(["hello world"]) == [2]


@realdata
def test_counter_from_a_tokenizer_pickles(gpt2_tokenizer: Path) -> None:
    counter = pickle.loads(pickle.dumps(TokenCounter(Tokenizer.from_file(str(gpt2_tokenizer)))))
    assert counter.count([" word" * 80]) == [80]
    assert counter.special_tokens == 0


# --- one tokenizer per file and process --------------------------------------------------------

EXAMPLE_TOKENIZER = Path(__file__).resolve().parent.parent / "examples" / "tokenizer.json"


def _copy_tokenizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    shutil.copyfile(EXAMPLE_TOKENIZER, path)
    return path


def test_counters_of_one_file_share_its_tokenizer(tmp_path: Path) -> None:
    path = _copy_tokenizer(tmp_path / "a")
    first = TokenCounter(path)
    # By the file, by its folder, and after a round trip through pickle (a worker's way).
    assert TokenCounter(str(path)).tokenizer is first.tokenizer
    assert TokenCounter(tmp_path / "a").tokenizer is first.tokenizer
    assert pickle.loads(pickle.dumps(first)).tokenizer is first.tokenizer
    # The public loader still gives the caller an object of its own.
    assert load_tokenizer(str(path)) is not first.tokenizer


def test_a_changed_file_is_loaded_again(tmp_path: Path) -> None:
    path = _copy_tokenizer(tmp_path)
    before = TokenCounter(path).tokenizer
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = TokenCounter(path).tokenizer
    assert after is not before
    assert TokenCounter(path).tokenizer is after


def test_only_the_latest_tokenizers_are_kept(tmp_path: Path) -> None:
    paths = [_copy_tokenizer(tmp_path / str(i)) for i in range(tokens._LOADED_MAX + 1)]
    first = TokenCounter(paths[0]).tokenizer
    assert TokenCounter(paths[0]).tokenizer is first
    for p in paths[1:]:
        TokenCounter(p)
    assert TokenCounter(paths[0]).tokenizer is not first
    assert len(tokens._LOADED) == tokens._LOADED_MAX


def test_an_empty_spec_is_refused_whatever_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _copy_tokenizer(tmp_path)
    TokenCounter("tokenizer.json")  # ./tokenizer.json is now shared
    with pytest.raises(ConfigError) as e:
        TokenCounter("")
    assert str(e.value) == "tokenizer must be a tokenizer.json path or a hub name, got ''"
