"""Content filters: each decides keep, drop (with a snake_case reason) or trim; the chain counts.

Conversations arrive with roles normalised and assistant HTML already converted to markdown, so
every filter sees the converted text only. Importing this package registers the built-in
filters. The stateless ones run in a :class:`FilterChain` (one per worker process), in this order:

order  name                      kind  reasons and meaning
  10   plugins                   drop  ``uses_plugins``
  20   leading_non_user          trim  turns between the system prompt and the first user turn
  30   empty_turn                trim  the first empty turn and all after it (a turn that
                                       only calls tools is not empty)
  40   unprintable_turn          trim  the first turn starting unprintable and all after it
  50   trailing_user_turn        trim  trailing user turns (``trailing_user_turn``) and tool
                                       turns (``trailing_tool_turn``)
  60   roles_not_alternating     drop  not ``user assistant (tool+ assistant)*`` repeated
  70   too_few_turns             drop  fewer than ``min_turns`` turns after the system prompt
  80   too_short                 drop  fewer than ``min_chars`` characters after it
  90   blocked_response          drop  an assistant turn starts with a blocked response
 100   blocked_phrase            drop  a blocked phrase, as whole words, in a blocked role's turn
 110   repeated_digits           drop  one digit repeated N times (off by default)
 120   restarted_numbered_list   drop  a numbered list restarts at 1 (off by default)
 130   language                  drop  ``language_not_kept`` / ``language_skipped`` (off by default)

Structure trims come first so that an empty greeting before the first question is trimmed alone
instead of cutting the whole conversation; the cuts remove a tail, so only the trailing trim needs
to run after them, and the drop checks then see the final shape. Cheap checks run before
expensive ones (language last). If trimming leaves no turn after the system prompt, the
conversation is dropped (``too_few_turns``, or ``no_turns_left`` when that filter is off).

What the pipeline writes: for a dropped conversation (``Outcome.reason`` set), the conversation
as it arrived, once, with that reason; for a kept one, ``Outcome.conv`` to the output and each
``Outcome.parts`` entry ``(start, end, reason)`` — indices into the conversation *as it arrived at
the chain*, sorted, non-overlapping — as ``arrived.turns[start:end]`` to the rejects.

Duplicates need global state and input order, so they run apart, in the main process, on what the
chain kept: a :class:`Dedup` of ``duplicate_id`` then ``duplicate_content``::

    chain = FilterChain(build_filters(config))    # in each worker
    dedup = build_dedup(config)                   # once, in the main process
    out = chain.apply(conv)                       # -> Outcome
    if out.kept:
        out2 = dedup.apply(out.conv)              # in input order
    stats = chain_stats_merged.followed_by(dedup.stats)

or, to hash in the workers: ``keys = dedup.keys(out.conv)`` there (pure), then
``dedup.check_keys(conv_id, keys)`` in the main process, in input order (None = kept).

Adding a filter is one module here (a registered :class:`DropFilter`, :class:`TrimFilter` or
:class:`KeyFilter` with a ``name``, an ``order`` and its ``reasons``) plus its import below.
Set ``shape_only = True`` on its class only when its verdict depends on nothing but the roles
(and, for a filter with ``bad_turn``, which turns that flags): a chain of such filters alone
gives each shape the outcome it worked out for the first conversation of that shape. The
attribute is not inherited, so a subclass of a structure filter that reads the text is safe.
"""
from . import blocked, content, dedup, language, metadata, patterns, structure  # noqa: F401
from .base import (
    FILTERS,
    KEEP,
    Dedup,
    Drop,
    DropFilter,
    Filter,
    FilterChain,
    FilterStats,
    Keep,
    KeyFilter,
    Outcome,
    Part,
    Trim,
    TrimFilter,
    Verdict,
    all_reasons,
    filter_names,
    register,
)
from .blocked import phrase_pattern
from .config import FilterConfig, build_dedup, build_filters
from .dedup import content_digest, normalise_text
from .language import detect_language
from .patterns import has_restarted_list

__all__ = [
    "FILTERS",
    "KEEP",
    "Dedup",
    "Drop",
    "DropFilter",
    "Filter",
    "FilterChain",
    "FilterConfig",
    "FilterStats",
    "Keep",
    "KeyFilter",
    "Outcome",
    "Part",
    "Trim",
    "TrimFilter",
    "Verdict",
    "all_reasons",
    "build_dedup",
    "build_filters",
    "content_digest",
    "detect_language",
    "filter_names",
    "has_restarted_list",
    "normalise_text",
    "phrase_pattern",
    "register",
]
