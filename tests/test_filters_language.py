"""The language filter: the missing-dependency error always; CLD2 when pycld2 is installed."""
from __future__ import annotations

import importlib.util
import pickle
import sys

import pytest

from convkit.errors import ConfigError
from convkit.filters import (
    FilterChain,
    FilterConfig,
    Outcome,
    build_filters,
    detect_language,
)
from convkit.filters.language import Language
from convkit.model import Conversation, Turn

MISSING = "language filtering needs pycld2: pip install 'convkit[langid]'"

needs_cld2 = pytest.mark.skipif(
    importlib.util.find_spec("pycld2") is None,
    reason="pycld2 is not installed: pip install 'convkit[langid]' to test language filtering",
)

EN = ("How do I bake bread at home without a bread machine?",
      "Mix flour, water, salt and yeast, knead the dough, let it rise, then bake it in a hot oven.")
KO = ("집에서 빵을 굽는 방법을 알려 주세요. 제빵기가 없어요.",
      "밀가루와 물, 소금, 이스트를 섞고 반죽을 치댄 다음 부풀게 두었다가 뜨거운 오븐에서 구우세요.")
ZH_HANT = ("請告訴我如何在家裡烤麵包，我沒有麵包機。",
           "把麵粉、水、鹽和酵母混合，揉麵，讓它發酵，然後放進很熱的烤箱裡烤。")


def C(pair, id="c1"):
    return Conversation(id, [Turn("user", pair[0]), Turn("assistant", pair[1])])


def reason(conv, **config):
    return FilterChain(build_filters(FilterConfig(**config))).apply(conv).reason


@pytest.fixture
def no_cld2(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycld2", None)  # makes ``import pycld2`` fail


def test_missing_pycld2_fails_when_the_filter_is_built(no_cld2):
    with pytest.raises(ConfigError) as e:
        build_filters(FilterConfig(language_keep=("en",)))
    assert str(e.value) == MISSING
    with pytest.raises(ConfigError) as e:
        Language(skip=["ko"])
    assert str(e.value) == MISSING
    with pytest.raises(ConfigError) as e:
        detect_language("hello")
    assert str(e.value) == MISSING


def test_missing_pycld2_is_fine_when_language_is_off(no_cld2):
    assert "language" not in [f.name for f in build_filters()]
    cfg = FilterConfig(language_keep=("en",), disabled={"language"})
    assert "language" not in [f.name for f in build_filters(cfg)]


@needs_cld2
def test_detect_language():
    assert detect_language("\n".join(EN)) == "en"
    assert detect_language("\n".join(KO)) == "ko"
    assert detect_language("\n".join(ZH_HANT)) == "zh-hant"
    assert detect_language("") == "un"
    assert detect_language("12345 67") == "un"
    # Characters CLD2 refuses to read are removed, not fatal.
    assert detect_language("\x00\x85\ufffe\ud800\U0010ffff" + "\n".join(EN)) == "en"


@needs_cld2
def test_language_keep_and_skip():
    assert reason(C(EN), language_keep=("en",)) is None
    assert reason(C(KO), language_keep=("en",)) == "language_not_kept"
    assert reason(C(KO), language_keep=("EN", "ko")) is None
    assert reason(C(KO), language_skip=("ko",)) == "language_skipped"
    assert reason(C(EN), language_skip=("ko",)) is None
    assert reason(C(ZH_HANT), language_keep=("zh",)) is None  # "zh" covers zh-Hant
    assert reason(C(ZH_HANT), language_skip=("zh-Hant",)) == "language_skipped"
    assert reason(C(EN), language_keep=("en", "fr"), language_skip=("ko",)) is None
    assert reason(C(("12345 678", "9876543 21")), language_keep=("en",), min_chars=0) == (
        "language_not_kept"
    )
    assert reason(C(("12345 678", "9876543 21")), language_keep=("un",), min_chars=0) is None


@needs_cld2
def test_language_detail_and_pickling():
    chain = FilterChain(build_filters(FilterConfig(language_keep=("en",))))
    assert chain.apply(C(KO)) == Outcome(None, "language_not_kept", (), "detected 'ko'")
    copy = pickle.loads(pickle.dumps(chain))
    assert copy.filters == chain.filters
    assert copy.apply(C(KO)) == chain.apply(C(KO))
    assert [f.name for f in chain.filters][-1] == "language"  # the costly check runs last


@needs_cld2
def test_an_unknown_language_code_is_refused_when_the_filter_is_built():
    with pytest.raises(ConfigError) as e:
        build_filters(FilterConfig(language_keep=("en", "english")))
    assert str(e.value) == (
        "unknown language code 'english' in language_keep (--keep-lang) (CLD2's code for English "
        "is 'en'): CLD2 reports ISO 639 codes such as en, fr, zh-Hant, and 'un' when it cannot tell"
    )
    with pytest.raises(ConfigError) as e:
        Language(keep=["he"])
    assert str(e.value).startswith(
        "unknown language code 'he' in language_keep (--keep-lang) (CLD2 writes it 'iw'): "
    )
    with pytest.raises(ConfigError) as e:
        Language(skip=["qq"])
    assert str(e.value) == (
        "unknown language code 'qq' in language_skip (--skip-lang): CLD2 reports ISO 639 codes "
        "such as en, fr, zh-Hant, and 'un' when it cannot tell"
    )
    Language(keep=["zh", "ZH-hant", "un", "sr-ME"], skip=["ko"])  # base codes and any case


def test_a_language_both_kept_and_skipped_is_refused():
    with pytest.raises(ConfigError) as e:
        FilterConfig(language_keep=("EN", "fr"), language_skip=("de", "en"))
    assert str(e.value) == (
        "language 'en' is both kept (language_keep) and skipped (language_skip): give it to "
        "one of them"
    )
