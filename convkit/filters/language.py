"""Language identification with CLD2 (the ``langid`` extra), off unless a keep or skip list is set.

As FastChat's ``optional_clean`` (through polyglot): the text is every turn joined by new lines;
CLD2 is asked once, and once more in best-effort mode when it is not sure; a text it still cannot
place, or cannot read, is ``un`` (unknown). Codes are CLD2's (``en``, ``ko``, ``zh``,
``zh-Hant``…), compared case-insensitively, and a list entry ``zh`` also covers ``zh-Hant``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from ..errors import ConfigError
from ..model import Conversation
from .base import KEEP, Drop, DropFilter, Verdict, register

if TYPE_CHECKING:
    from .config import FilterConfig

UNKNOWN = "un"

# CLD2 rejects the whole text ("invalid UTF-8") when it holds C0/C1 controls, surrogates or
# noncharacters; they carry no language, so they are removed before detection.
_NONCHARACTERS = "".join(
    chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF)
)
_CLD2_UNREADABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)


def _cld2() -> ModuleType:
    try:
        import pycld2  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "language filtering needs pycld2: pip install 'convkit[langid]'"
        ) from None
    module: ModuleType = pycld2
    return module


def detect_language(text: str) -> str:
    """CLD2's code for the language of ``text``, lowercase, or ``"un"`` when unknown."""
    cld2 = _cld2()
    clean = _CLD2_UNREADABLE.sub("", text)
    try:
        reliable, _, details = cld2.detect(clean)
        if not reliable:
            reliable, _, details = cld2.detect(clean, bestEffort=True)
    except cld2.error:
        return UNKNOWN
    return str(details[0][1]).lower() if reliable else UNKNOWN


#: Codes ISO 639-1 replaced, which CLD2 still reports.
_OLD_CODES = {"he": "iw", "jv": "jw"}


def _known_codes(cld2: ModuleType) -> set[str]:
    """The codes CLD2 reports, lower case, their bases ("zh" covers zh-Hant) and "un"."""
    known = {str(code).lower() for _, code in cld2.LANGUAGES} | {UNKNOWN}
    return known | {code.split("-", 1)[0] for code in known}


def _code_hint(cld2: ModuleType, code: str) -> str:
    """What to write instead of an unknown ``code``: CLD2's code when it is a language's name,
    the code CLD2 still uses when ISO 639-1 replaced it; else nothing."""
    for name, known in cld2.LANGUAGES:
        if str(name).lower() == code:
            name = str(name)
            return f" (CLD2's code for {name.capitalize() if name.isupper() else name} is {known!r})"
    return f" (CLD2 writes it {_OLD_CODES[code]!r})" if code in _OLD_CODES else ""


def _listed(code: str, codes: frozenset[str]) -> bool:
    return code in codes or code.split("-", 1)[0] in codes


@register
class Language(DropFilter):
    name = "language"
    order = 130
    description = "keep or skip conversations by detected language (needs pycld2; off by default)"
    reasons: ClassVar[dict[str, str]] = {
        "language_not_kept": "the detected language is not in the keep list",
        "language_skipped": "the detected language is in the skip list",
    }

    def __init__(
        self, keep: Iterable[str] | None = None, skip: Iterable[str] | None = None
    ) -> None:
        cld2 = _cld2()  # fail when the filter is built, not on the first conversation
        self.keep = None if keep is None else frozenset(c.lower() for c in keep)
        self.skip = None if skip is None else frozenset(c.lower() for c in skip)
        # A code CLD2 never reports would keep nothing (or skip nothing), silently.
        known = _known_codes(cld2)
        for field, flag, codes in (
            ("language_keep", "--keep-lang", self.keep),
            ("language_skip", "--skip-lang", self.skip),
        ):
            unknown = sorted(set(codes or ()) - known)
            if unknown:
                raise ConfigError(
                    f"unknown language code {unknown[0]!r} in {field} ({flag})"
                    f"{_code_hint(cld2, unknown[0])}: CLD2 reports ISO 639 codes such as en, "
                    "fr, zh-Hant, and 'un' when it cannot tell"
                )

    @classmethod
    def from_config(cls, config: FilterConfig) -> Language | None:
        if config.language_keep is None and config.language_skip is None:
            return None
        return cls(config.language_keep, config.language_skip)

    def apply(self, conv: Conversation) -> Verdict:
        code = detect_language("\n".join(t.content for t in conv.turns))
        if self.keep is not None and not _listed(code, self.keep):
            return Drop("language_not_kept", f"detected {code!r}")
        if self.skip is not None and _listed(code, self.skip):
            return Drop("language_skipped", f"detected {code!r}")
        return KEEP

    def check(self, conv: Conversation) -> str | None:
        v = self.apply(conv)
        return v.reason if isinstance(v, Drop) else None
