"""The filter protocol, the registry, and the loop that runs filters and keeps the counters.

A filter only decides (datatrove's ``base_filter``): it looks at a conversation and returns a
:data:`Verdict` — keep, drop with a snake_case reason, or trim some turns away with a reason for
each removed range. It never edits a conversation, counts, or writes anything: the loop here
applies trims, translates turn indices, and counts; the pipeline writes the rejects.

Three kinds of filter:

* :class:`DropFilter` — implement ``check(conv) -> reason | None``;
* :class:`TrimFilter` — implement ``trim(conv) -> [Part]``, the ranges of turns to remove;
* :class:`KeyFilter` — stateful, one key per conversation, dropping repeated keys; these run in
  the main process, in input order, through :class:`Dedup` (never in a worker's chain).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..errors import ConfigError
from ..model import SYSTEM, Conversation

if TYPE_CHECKING:
    from .config import FilterConfig


# --------------------------------------------------------------------------- verdicts


class Part(NamedTuple):
    """Turns ``[start, end)`` removed from a conversation, and why."""

    start: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep the conversation as it is. Use the singleton :data:`KEEP`."""


KEEP = Keep()


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop the whole conversation; ``detail`` is an optional human hint for the rejects file."""

    reason: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Trim:
    """Remove ``parts`` (indices into the conversation the filter was given) and carry on."""

    parts: tuple[Part, ...]


Verdict = Keep | Drop | Trim


# --------------------------------------------------------------------------- filters


class Filter:
    """Base class of every filter. Subclasses set the class attributes and implement one method.

    ``name`` is the registry key (what ``--disable`` takes); ``order`` places the filter in the
    chain (lower runs first); ``reasons`` maps each reason the filter can give to its meaning.
    Filters must be picklable: the chain is sent to worker processes.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 1000
    description: ClassVar[str] = ""
    reasons: ClassVar[dict[str, str]] = {}
    #: True when the verdict depends only on the conversation's shape: its roles, and, for a
    #: filter with a ``bad_turn(turn)`` method, which turns that method flags. A chain made of
    #: such filters alone remembers its outcome per shape (see :class:`FilterChain`). Each
    #: class declares it for itself: it is not inherited.
    shape_only: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: FilterConfig) -> Filter | None:
        """The filter as ``config`` tunes it, or None when the config turns it off."""
        return cls()

    def apply(self, conv: Conversation) -> Verdict:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({state})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class DropFilter(Filter):
    """A filter that keeps or drops whole conversations."""

    def check(self, conv: Conversation) -> str | None:
        """None to keep ``conv``, or the snake_case reason to drop it."""
        raise NotImplementedError

    def apply(self, conv: Conversation) -> Verdict:
        reason = self.check(conv)
        return KEEP if reason is None else Drop(reason)


class TrimFilter(Filter):
    """A filter that removes some turns and keeps the rest (which later filters may still drop)."""

    def trim(self, conv: Conversation) -> list[Part]:
        """The ranges of ``conv.turns`` to remove, each with its reason; empty to keep all."""
        raise NotImplementedError

    def apply(self, conv: Conversation) -> Verdict:
        parts = self.trim(conv)
        return Trim(tuple(parts)) if parts else KEEP


class KeyFilter(Filter):
    """A stateful filter: drops a conversation whose key was already seen (first one wins).

    ``apply`` both checks and remembers; :class:`Dedup` uses ``key`` and ``seen`` directly so that
    a conversation dropped by one key filter is not remembered by another.
    """

    def __init__(self) -> None:
        self.seen: dict[Hashable, str] = {}  # key -> id of the first conversation with it

    def key(self, conv: Conversation) -> Hashable:
        raise NotImplementedError

    def key_known(self, conv: Conversation, known: dict[int, tuple[str, bytes]]) -> Hashable:
        """:meth:`key`, given the SHA-256 digests of normalised contents computed already
        (``{id(content): (content, digest)}``, see :func:`~convkit.filters.content_digest`)
        for a filter that can use them."""
        return self.key(conv)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self.seen)} seen>)"

    def duplicate(self, conv_id: str, key: Hashable) -> Drop | None:
        """The drop verdict when ``key`` was seen before (detail: the first id), else None."""
        first = self.seen.get(key)
        if first is None:
            return None
        return Drop(self.name, None if first == conv_id else f"same as {first!r}")

    def apply(self, conv: Conversation) -> Verdict:
        k = self.key(conv)
        drop = self.duplicate(conv.id, k)
        if drop is not None:
            return drop
        self.seen[k] = conv.id
        return KEEP


# --------------------------------------------------------------------------- registry

#: The chain's own reason: a conversation trimmed down to its system prompt is never kept.
NO_TURNS_LEFT = "no_turns_left"

#: Every registered filter class by name, in registration order.
FILTERS: dict[str, type[Filter]] = {}


def register(cls: type[Filter]) -> type[Filter]:
    """Class decorator adding a filter to :data:`FILTERS` under its ``name``."""
    if not cls.name:
        raise RuntimeError(f"filter class {cls.__name__} has no name")
    if cls.name in FILTERS:
        raise RuntimeError(f"filter name {cls.name!r} registered twice")
    FILTERS[cls.name] = cls
    return cls


def filter_names() -> list[str]:
    """Registered filter names, sorted (the choices of ``--disable``)."""
    return sorted(FILTERS)


def all_reasons() -> dict[str, str]:
    """Every reason a registered filter can give, with its meaning, sorted by reason."""
    out = {NO_TURNS_LEFT: "trimming left no turn after the system prompt (too_few_turns is off)"}
    for cls in FILTERS.values():
        out.update(cls.reasons)
    return dict(sorted(out.items()))


def prompt_length(conv: Conversation) -> int:
    """How many leading system turns (the system prompt) ``conv`` has."""
    turns = conv.turns
    if not turns or turns[0].role != SYSTEM:
        return 0
    n = 0
    for t in turns:
        if t.role != SYSTEM:
            break
        n += 1
    return n


# --------------------------------------------------------------------------- counters and outcome


class FilterStats(Counter[str]):
    """Counters ``total``, ``kept``, ``dropped_<reason>`` (conversations) and ``trimmed_<reason>``
    (turns removed from conversations that were kept). Invariant for one stage:
    ``total == kept + sum(dropped_*)``. Merge the counters of worker processes with :meth:`merge`.
    """

    def merge(self, other: Counter[str]) -> FilterStats:
        """Add ``other``'s counts to these; returns self."""
        self.update(other)
        return self

    def followed_by(self, later: Counter[str]) -> FilterStats:
        """The counters of this stage then ``later`` (which saw only what this one kept)."""
        out = FilterStats(self)
        for k, v in later.items():
            if k not in ("total", "kept"):
                out[k] += v
        out["kept"] = later["kept"]
        return out


@dataclass(slots=True)
class Outcome:
    """What the filters made of one conversation.

    Kept: ``conv`` is the conversation to write (the input object itself when nothing was
    trimmed, a copy otherwise); ``reason`` is None; ``parts`` are the trimmed turn ranges, with
    indices into the conversation **as it arrived** at the chain, sorted and non-overlapping —
    the pipeline writes each ``arrived.turns[start:end]`` to the rejects with its reason.

    Dropped: ``conv`` is None; ``reason`` is the drop reason; ``parts`` is empty — the pipeline
    rejects the whole conversation as it arrived, once. ``detail`` may say more (which phrase,
    which language, what had been trimmed before the drop).
    """

    conv: Conversation | None
    reason: str | None = None
    parts: tuple[Part, ...] = ()
    detail: str | None = None

    @property
    def kept(self) -> bool:
        return self.reason is None


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in sorted ``indices``, as ``[start, end)`` pairs."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _merge_parts(parts: Iterable[Part]) -> tuple[Part, ...]:
    """Sort parts and join adjacent ones with the same reason."""
    out: list[Part] = []
    for p in sorted(parts):
        if out and out[-1].end == p.start and out[-1].reason == p.reason:
            out[-1] = Part(out[-1].start, p.end, p.reason)
        else:
            out.append(p)
    return tuple(out)


def _describe_parts(parts: Sequence[Part]) -> str:
    def turns(p: Part) -> str:
        return f"turn {p.start}" if p.end - p.start == 1 else f"turns {p.start}-{p.end - 1}"

    return "after trimming " + ", ".join(f"{turns(p)} ({p.reason})" for p in parts)


class FilterChain:
    """Runs filters in order on one conversation at a time; keeps :class:`FilterStats`.

    Stateless filters only, so that each worker process can hold its own copy; the counters of
    the copies are merged afterwards (``FilterStats().merge(a).merge(b)``).
    """

    def __init__(self, filters: Iterable[Filter]) -> None:
        self.filters = tuple(filters)
        for f in self.filters:
            if isinstance(f, KeyFilter):
                raise ConfigError(
                    f"filter {f.name!r} keeps state across conversations; run it with Dedup "
                    "in the main process, not in a FilterChain"
                )
        self._steps = tuple(_step(f) for f in self.filters)
        self.stats = FilterStats()
        # A chain of shape-only filters (the structure filters, empty_turn) gives every
        # conversation of one shape the same outcome: it is worked out once per shape (see
        # apply). The shape takes, of each filter that flags turns, its flags: the functions
        # "are all the turns clear?" and "is this turn bad?".
        self._flaggers = tuple(
            (getattr(f, "all_good", None), f.bad_turn)  # type: ignore[attr-defined]
            for f in self.filters
            if hasattr(f, "bad_turn")
        )
        self._by_shape: dict[tuple[Any, ...], tuple[Any, ...]] | None = (
            {} if self.filters and all(_shape_only(f) for f in self.filters) else None
        )

    @classmethod
    def from_config(cls, config: FilterConfig | dict[str, Any] | None = None) -> FilterChain:
        from .config import build_filters

        return cls(build_filters(config))

    def apply(self, conv: Conversation) -> Outcome:
        """Filter one conversation; ``conv`` itself is never modified.

        A chain of shape-only filters works out the outcome of the first conversation of each
        shape (its roles, and which turns each filter's ``bad_turn`` flags) and gives the same
        to the others: the same counters, turns kept, parts, reason and detail."""
        memo = self._by_shape
        turns = conv.turns
        if memo is None or len(turns) > _LONGEST_SHAPE:
            return self._filter(conv)[0]
        try:
            key: tuple[Any, ...] = tuple([t.role for t in turns])
            for i, (clear, bad) in enumerate(self._flaggers):
                if clear is None or not clear(turns):
                    key = (*key, i, tuple([bad(t) for t in turns]))
            known = memo.get(key)
        except Exception:  # noqa: BLE001 - a turn the flags cannot read: the filters in order
            # decide (an earlier one may trim it before a later one would fail on it)
            return self._filter(conv)[0]
        if known is None:
            out, origin = self._filter(conv)
            if len(memo) < _SHAPES:
                memo[key] = (out.reason, out.detail, out.parts, origin)
            return out
        reason, detail, parts, origin = known
        stats = self.stats
        stats["total"] += 1
        if reason is not None:
            stats[f"dropped_{reason}"] += 1
            return Outcome(None, reason, (), detail)
        stats["kept"] += 1
        if origin is None:
            return Outcome(conv)
        for p in parts:
            stats[f"trimmed_{p.reason}"] += p.end - p.start
        return Outcome(conv.with_turns([turns[i] for i in origin]), None, parts)

    def _filter(self, conv: Conversation) -> tuple[Outcome, list[int] | None]:
        """The outcome of running the filters, and the positions on arrival of the turns kept
        (None when none was trimmed)."""
        stats = self.stats
        stats["total"] += 1
        current = conv
        # Built at the first trim: most conversations pass every filter untouched.
        origin: list[int] | None = None  # position now -> position on arrival
        parts: list[Part] = []
        for kind, call, f in self._steps:
            if kind == _CHECK:
                reason = call(current)
                if reason is None:
                    continue
                return self._drop(reason, None, parts), None
            if kind == _TRIM:
                trimmed = call(current)
                if not trimmed:
                    continue
            else:
                verdict = call(current)
                if isinstance(verdict, Drop):
                    return self._drop(verdict.reason, verdict.detail, parts), None
                if not isinstance(verdict, Trim) or not verdict.parts:
                    continue
                trimmed = verdict.parts
            turns = current.turns
            removed = _checked_removal(f, trimmed, len(turns))
            if origin is None:
                origin = list(range(len(turns)))
            for p in trimmed:
                for s, e in _runs([origin[i] for i in range(p.start, p.end)]):
                    parts.append(Part(s, e, p.reason))
            keep = [i for i in range(len(turns)) if i not in removed]
            current = current.with_turns([turns[i] for i in keep])
            origin = [origin[i] for i in keep]
        turns = current.turns
        if not turns or (turns[-1].role == SYSTEM and len(turns) == prompt_length(current)):
            # Reached only when too_few_turns and too_short are off: never keep an empty one.
            return self._drop(NO_TURNS_LEFT, None, parts), None
        stats["kept"] += 1
        if not parts:
            return Outcome(current), None
        merged = _merge_parts(parts)
        for p in merged:
            stats[f"trimmed_{p.reason}"] += p.end - p.start
        return Outcome(current, None, merged), origin

    def _drop(self, reason: str, detail: str | None, parts: list[Part]) -> Outcome:
        self.stats[f"dropped_{reason}"] += 1
        if parts:
            before = _describe_parts(_merge_parts(parts))
            detail = before if detail is None else f"{detail}; {before}"
        return Outcome(None, reason, (), detail)

    def __call__(self, conv: Conversation) -> Outcome:
        return self.apply(conv)

    def __repr__(self) -> str:
        return f"FilterChain({list(self.filters)!r})"


def _shape_only(f: Filter) -> bool:
    """Whether ``f``'s own class declares it shape-only: a subclass that decides otherwise
    (reading the text) does not inherit the claim."""
    return vars(type(f)).get("shape_only") is True


_CHECK, _TRIM, _APPLY = 0, 1, 2  # how the chain calls a filter (see _step)
# Shapes a chain remembers, and the longest conversation it remembers one for.
_SHAPES, _LONGEST_SHAPE = 4096, 64


def _step(f: Filter) -> tuple[int, Any, Filter]:
    """How the chain calls ``f``: its ``check`` or ``trim`` directly when it keeps the base
    class's ``apply`` (saving a call and a verdict object per filter and conversation)."""
    apply = type(f).apply
    if isinstance(f, DropFilter) and apply is DropFilter.apply:
        return _CHECK, f.check, f
    if isinstance(f, TrimFilter) and apply is TrimFilter.apply:
        return _TRIM, f.trim, f
    return _APPLY, f.apply, f


def _checked_removal(f: Filter, parts: Sequence[Part], n: int) -> set[int]:
    removed: set[int] = set()
    for p in parts:
        if not 0 <= p.start < p.end <= n or removed.intersection(range(p.start, p.end)):
            raise RuntimeError(f"filter {f.name!r} returned a bad part {p!r} for {n} turns")
        removed.update(range(p.start, p.end))
    return removed


class Dedup:
    """Runs :class:`KeyFilter` s in input order, in the main process, after the chain.

    A conversation is remembered (its id, its content digest) only when it is kept, as FastChat
    does, so a conversation dropped as a duplicate does not shadow later ones.
    """

    def __init__(self, filters: Iterable[KeyFilter]) -> None:
        self.filters = tuple(filters)
        for f in self.filters:
            if not isinstance(f, KeyFilter):
                raise ConfigError(f"filter {f.name!r} is not a key filter; put it in a FilterChain")
        self.stats = FilterStats()
        # Whether a filter's key takes the content digests computed already (key_known).
        self.uses_digests = any(
            type(f).key_known is not KeyFilter.key_known for f in self.filters
        )

    @classmethod
    def from_config(cls, config: FilterConfig | dict[str, Any] | None = None) -> Dedup:
        from .config import build_dedup

        return build_dedup(config)

    def keys(
        self, conv: Conversation, known: dict[int, tuple[str, bytes]] | None = None
    ) -> tuple[Hashable, ...]:
        """The keys of ``conv``, one per filter. Pure: a worker process may compute them (the
        content digest is the costly part) and send them to the main process's :meth:`check_keys`.
        ``known``: see :meth:`KeyFilter.key_known`.
        """
        if not self.filters:
            return ()
        if known is None:
            return tuple(f.key(conv) for f in self.filters)
        return tuple(f.key_known(conv, known) for f in self.filters)

    def check_keys(self, conv_id: str, keys: Sequence[Hashable]) -> Drop | None:
        """In input order: the first filter's drop verdict whose key was seen, or None after
        remembering every key (the conversation is kept). Counts :attr:`stats`."""
        self.stats["total"] += 1
        if not self.filters:
            self.stats["kept"] += 1
            return None
        for f, k in zip(self.filters, keys, strict=True):
            drop = f.duplicate(conv_id, k)
            if drop is not None:
                self.stats[f"dropped_{drop.reason}"] += 1
                return drop
        for f, k in zip(self.filters, keys, strict=True):
            f.seen[k] = conv_id
        self.stats["kept"] += 1
        return None

    def apply(self, conv: Conversation) -> Outcome:
        """Keep the first conversation with a given key; drop (and do not remember) repeats."""
        drop = self.check_keys(conv.id, self.keys(conv))
        if drop is not None:
            return Outcome(None, drop.reason, (), drop.detail)
        return Outcome(conv)

    def __call__(self, conv: Conversation) -> Outcome:
        return self.apply(conv)

    def __repr__(self) -> str:
        return f"Dedup({list(self.filters)!r})"
