"""Every filter knob in one validated, picklable dataclass, and the builders that read it."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..model import ROLES
from .base import FILTERS, Dedup, Filter, KeyFilter
from .blocked import FASTCHAT_PHRASES, FASTCHAT_RESPONSES


@dataclass(frozen=True)
class FilterConfig:
    """The filter settings; the defaults are FastChat's rules with their bugs fixed.

    ``disabled``: names of filters to switch off (see :func:`~convkit.filters.filter_names`).
    ``min_turns``: fewest turns after the system prompt (0 turns the check off).
    ``min_chars``: fewest characters in those turns (FastChat: 16; 0 turns it off).
    ``blocked_phrases``: matched as whole words in turns of ``blocked_roles``, in any
    case when all lowercase and as written otherwise (empty turns the filter off). ``blocked_responses``: prefixes of assistant turns.
    ``repeated_digits``: drop a digit repeated this many times in a row (FastChat's optional
    rule uses 9; None is off). ``restarted_lists``: FastChat's optional restarted-list rule.
    ``language_keep`` / ``language_skip``: CLD2 codes; None is off (needs pycld2).
    Sequences may be given as lists; they are stored as tuples (``disabled`` as a frozenset).
    """

    disabled: frozenset[str] = frozenset()
    min_turns: int = 2
    min_chars: int = 16
    blocked_phrases: tuple[str, ...] = FASTCHAT_PHRASES
    blocked_roles: tuple[str, ...] = ("user", "assistant", "system")
    blocked_responses: tuple[str, ...] = FASTCHAT_RESPONSES
    repeated_digits: int | None = None
    restarted_lists: bool = False
    language_keep: tuple[str, ...] | None = None
    language_skip: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        disabled = frozenset(_strings("disabled", self.disabled))
        for name in sorted(disabled):
            if name not in FILTERS:
                raise ConfigError(f"unknown filter {name!r}; known: {', '.join(sorted(FILTERS))}")
        _set(self, "disabled", disabled)
        for name in ("min_turns", "min_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"expected {name} to be a non-negative integer, got {value!r}")
        for name in ("blocked_phrases", "blocked_responses"):
            values = _strings(name, getattr(self, name))
            for v in values:
                if not v.strip():
                    raise ConfigError(f"expected {name} to hold non-empty strings, got {v!r}")
            _set(self, name, values)
        roles = _strings("blocked_roles", self.blocked_roles)
        for r in roles:
            if r not in ROLES:
                raise ConfigError(
                    f"unknown role {r!r} in blocked_roles; known: {', '.join(sorted(ROLES))}"
                )
        _set(self, "blocked_roles", roles)
        run = self.repeated_digits
        if run is not None and (isinstance(run, bool) or not isinstance(run, int) or run < 2):
            raise ConfigError(
                f"expected repeated_digits to be None or an integer of at least 2, got {run!r}"
            )
        if not isinstance(self.restarted_lists, bool):
            raise ConfigError(
                f"expected restarted_lists to be true or false, got {self.restarted_lists!r}"
            )
        for name in ("language_keep", "language_skip"):
            codes = getattr(self, name)
            if codes is None:
                continue
            codes = tuple(c.strip().lower() for c in _strings(name, codes))
            if not codes or not all(codes):
                raise ConfigError(
                    f"expected {name} to be None or a list of language codes, got {list(codes)!r}"
                )
            _set(self, name, codes)
        both = set(self.language_keep or ()) & set(self.language_skip or ())
        if both:
            raise ConfigError(
                f"language {min(both)!r} is both kept (language_keep) and skipped "
                "(language_skip): give it to one of them"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FilterConfig:
        """A config from a mapping of field names (e.g. parsed from a config file)."""
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                raise ConfigError(f"unknown filter option {key!r}; known: {', '.join(known)}")
        return cls(**values)


def _set(config: FilterConfig, name: str, value: Any) -> None:
    object.__setattr__(config, name, value)  # normalising a frozen dataclass in __post_init__


def _strings(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(f"expected {name} to be a list of strings, got {type(values).__name__}")
    out = tuple(values)
    for v in out:
        if not isinstance(v, str):
            raise ConfigError(f"expected {name} to be a list of strings, got an item {v!r}")
    return out


def _config(config: FilterConfig | Mapping[str, Any] | None) -> FilterConfig:
    if config is None:
        return FilterConfig()
    if isinstance(config, FilterConfig):
        return config
    if isinstance(config, Mapping):
        return FilterConfig.from_dict(config)
    raise ConfigError(f"expected a FilterConfig or a dict, got {type(config).__name__}")


def _enabled(config: FilterConfig, *, keyed: bool) -> list[Filter]:
    out = []
    for name, cls in sorted(FILTERS.items(), key=lambda kv: (kv[1].order, kv[0])):
        if name in config.disabled or issubclass(cls, KeyFilter) != keyed:
            continue
        f = cls.from_config(config)
        if f is not None:
            out.append(f)
    return out


def build_filters(config: FilterConfig | Mapping[str, Any] | None = None) -> list[Filter]:
    """The stateless filters ``config`` turns on, in chain order (for a FilterChain)."""
    return _enabled(_config(config), keyed=False)


def build_dedup(config: FilterConfig | Mapping[str, Any] | None = None) -> Dedup:
    """The duplicate filters ``config`` turns on, in a fresh :class:`Dedup` (empty state)."""
    return Dedup(_enabled(_config(config), keyed=True))  # type: ignore[arg-type]
