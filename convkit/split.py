"""The public splitter: a conversation cut into segments of whole exchanges that fit a token limit.

An *exchange* runs from a user turn to the last assistant turn before the next user turn
(consecutive user turns belong to one exchange). Exchanges are packed greedily, in order, into
segments; the system prompt (the leading system turns) is carried into every segment and counted
in it. Unlike FastChat's splitter (:func:`fastchat_split`, kept for comparison), this one
guarantees:

- no segment over ``max_tokens``, unless it is a single oversize exchange kept with
  ``oversize="keep"`` (flagged with ``meta["oversize"] = True``);
- no empty segment, and no lost final exchange;
- every segment starts at a user turn (after the system prompt) and ends at an assistant turn;
- segment ids ``{id}_{k}``, k = 0, 1, 2, … in order; unique whenever conversation ids are, since
  ``k`` has no underscore;
- every turn is either in a segment or in a :class:`DroppedPart` with a reason (see
  ``DROP_REASONS``); nothing is lost silently. After its system prompt, a segment is a
  contiguous run of the conversation's turns: no segment spans a dropped part.

Token accounting: a turn costs ``counts[i] + turn_overhead``; a segment costs ``segment_overhead``
+ the system prompt's turns + its exchanges' turns. Packing itself runs in the compiled core
(:mod:`convkit._fastsplit`) or its pure-Python twin; ``BACKEND`` says which.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._backend import load
from .continuation import is_continuation
from .errors import ConfigError
from .model import ASSISTANT, USER, Conversation

# The one place the core is chosen (see convkit/_backend.py).
_core, BACKEND = load("._fastsplit", "._fastsplit_py")
plan = _core.plan

__all__ = [
    "BACKEND",
    "CONTINUATION_POLICIES",
    "DROP_REASONS",
    "LEADING_NON_USER",
    "NO_ASSISTANT_REPLY",
    "NO_CONTEXT",
    "OVERSIZE_EXCHANGE",
    "OVERSIZE_POLICIES",
    "UNUSED_SYSTEM_PROMPT",
    "DroppedPart",
    "SplitResult",
    "check_split_options",
    "fastchat_boundaries",
    "fastchat_split",
    "plan",
    "split_conversation",
]

#: Turns after the system prompt and before the first user turn (a segment must open with a user
#: turn, and those turns answer or continue nothing that the segment holds).
LEADING_NON_USER = "leading_non_user"
#: Turns that no assistant turn answers: an exchange without an assistant turn (e.g. a trailing
#: user turn), or the turns of an exchange after its last assistant turn (e.g. a tool result).
NO_ASSISTANT_REPLY = "no_assistant_reply"
#: One exchange that cannot fit in a segment on its own, with ``oversize="drop"``. This includes
#: every exchange of a conversation whose system prompt alone fills ``max_tokens``.
OVERSIZE_EXCHANGE = "oversize_exchange"
#: The system prompt of a conversation that yields no segment to carry it.
UNUSED_SYSTEM_PROMPT = "unused_system_prompt"
#: An exchange whose user turn only asks to go on ("continue") and that would open a segment:
#: what it continues is not in that segment (``continuations="drop"``).
NO_CONTEXT = "no_context"
DROP_REASONS = (
    LEADING_NON_USER, NO_ASSISTANT_REPLY, NO_CONTEXT, OVERSIZE_EXCHANGE, UNUSED_SYSTEM_PROMPT
)

OVERSIZE_POLICIES = ("drop", "keep")
CONTINUATION_POLICIES = ("drop", "keep")


@dataclass(slots=True, frozen=True)
class DroppedPart:
    """Turns ``[start, end)`` of the original conversation that no segment holds, and why.

    ``tokens`` is the cost of those turns: their token counts plus the per-turn overhead.
    Counted through a chat template (:mod:`convkit.budget`), an oversize exchange's is the
    exact count of the segment it would make, rendered: system prompt and template included.
    """

    start: int
    end: int
    reason: str
    tokens: int


@dataclass(slots=True)
class SplitResult:
    """The segments of one conversation, in order, and the parts of it that were dropped.

    ``segment_tokens[k]`` is the total cost of ``segments[k]`` (overheads and system prompt
    included) and ``spans[k]`` the turns ``[start, end)`` of the original conversation it holds
    after the system prompt. ``dropped`` is in turn order, except that ``unused_system_prompt``
    (a consequence of the other drops) comes last: ``dropped[0]`` says why a conversation that
    yields no segment yields none.
    """

    segments: list[Conversation] = field(default_factory=list)
    segment_tokens: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    dropped: list[DroppedPart] = field(default_factory=list)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_split_options(
    *,
    max_tokens: int,
    turn_overhead: int = 0,
    segment_overhead: int = 0,
    oversize: str = "drop",
    continuations: str = "drop",
) -> None:
    """Raise :class:`ConfigError` when the options cannot work; call it once before a run.

    Besides the type and range of each option, it refuses a ``max_tokens`` that the fixed costs of
    the smallest possible exchange (a user and an assistant turn) already fill, since no
    conversation could then yield a segment: that is a configuration mistake, not a data problem.
    (A system prompt that fills ``max_tokens`` is per conversation: its exchanges are oversize.)
    """
    if not _is_int(max_tokens) or max_tokens <= 0:
        raise ConfigError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    for name, value in (("turn_overhead", turn_overhead), ("segment_overhead", segment_overhead)):
        if not _is_int(value) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if oversize not in OVERSIZE_POLICIES:
        raise ConfigError(f"oversize must be 'drop' or 'keep', got {oversize!r}")
    if continuations not in CONTINUATION_POLICIES:
        raise ConfigError(f"continuations must be 'drop' or 'keep', got {continuations!r}")
    fixed = segment_overhead + 2 * turn_overhead
    if fixed >= max_tokens:
        raise ConfigError(
            f"max_tokens {max_tokens} leaves no room for any exchange: segment_overhead "
            f"{segment_overhead} + 2 x turn_overhead {turn_overhead} = {fixed}"
        )


def _exchanges(
    conv: Conversation, first: int, dropped: list[tuple[int, int, str]]
) -> list[list[tuple[int, int]]]:
    """The exchanges from turn ``first`` on, grouped in runs of adjacent ones.

    An exchange is ``[user turn, last assistant turn]``; turns that belong to no exchange go to
    ``dropped`` and end the current run, so that no segment spans them.
    """
    roles = conv.roles()
    n = len(roles)
    runs: list[list[tuple[int, int]]] = []
    run: list[tuple[int, int]] = []
    i = first
    while i < n:
        start = i
        i += 1
        # A new exchange opens at a user turn that follows a non-user turn.
        while i < n and not (roles[i] == USER and roles[i - 1] != USER):
            i += 1
        last = i - 1
        while last >= start and roles[last] != ASSISTANT:
            last -= 1
        if last >= start:
            run.append((start, last + 1))
        if last + 1 < i:  # turns no assistant answers: the whole exchange, or its tail
            dropped.append((last + 1, i, NO_ASSISTANT_REPLY))
            if run:
                runs.append(run)
                run = []
    if run:
        runs.append(run)
    return runs


def _plan_run(
    run: list[tuple[int, int]], costs: list[int], budget: int, glued: list[bool] | None
) -> list[tuple[int, int, int, bool]]:
    """Segments of one run of adjacent exchanges, in original turn indices. An exchange
    ``glued`` never opens a segment: it stays with the one before it (see _glue)."""
    base, end = run[0][0], run[-1][1]
    if budget < 0:
        # The system prompt alone is over the limit: every exchange is oversize, alone.
        return [(s, e, sum(costs[s:e]), True) for s, e in run]
    starts = bytearray(end - base)
    for k, (s, _) in enumerate(run):
        starts[s - base] = glued is None or not glued[k]
    words = iter(plan(array("q", costs[base:end]), starts, budget))  # 4 words per segment
    return [(base + s, base + e, cost, flag == 1) for s, e, cost, flag in zip(*[words] * 4)]


def _glue(
    run: list[tuple[int, int]], asks: list[bool], costs: list[int], budget: int
) -> list[bool]:
    """For each exchange of a run, whether it stays with the exchange before it: a request to
    go on does, as long as that group of exchanges fits ``budget`` in one segment."""
    glued = [False] * len(run)
    group = 0
    for k, (s, e) in enumerate(run):
        cost = sum(costs[s:e])
        if k and asks[k] and group + cost <= budget:
            glued[k] = True
            group += cost
        else:
            group = cost
    return glued


def split_conversation(
    conv: Conversation,
    counts: Sequence[int],
    *,
    max_tokens: int,
    turn_overhead: int = 0,
    segment_overhead: int = 0,
    oversize: str = "drop",
    continuations: str = "drop",
) -> SplitResult:
    """Split ``conv`` into segments of whole exchanges that fit ``max_tokens``.

    ``counts[i]`` is the token count of ``conv.turns[i].content``. Each turn costs
    ``turn_overhead`` more (role header, separators) and each segment ``segment_overhead`` more
    (BOS/EOS, template frame). An exchange that cannot fit alone is dropped (reason
    ``oversize_exchange``) with ``oversize="drop"``, or written as a segment of its own with
    ``meta["oversize"] = True`` with ``oversize="keep"``. Segments share the conversation's
    ``Turn`` objects, ``source`` and ``raw``; ``meta`` is copied.
    """
    check_split_options(
        max_tokens=max_tokens,
        turn_overhead=turn_overhead,
        segment_overhead=segment_overhead,
        oversize=oversize,
        continuations=continuations,
    )
    turns = conv.turns
    n = len(turns)
    if len(counts) != n:
        raise ValueError(
            f"counts must have one entry per turn: got {len(counts)} for {n} turns "
            f"in conversation {conv.id!r}"
        )
    for i, c in enumerate(counts):
        if not _is_int(c) or c < 0:
            raise ValueError(
                f"counts must be non-negative integers, got {c!r} for turn {i} "
                f"in conversation {conv.id!r}"
            )
    costs = [c + turn_overhead for c in counts]

    n_system = len(conv.system_turns())
    system = turns[:n_system]
    system_cost = sum(costs[:n_system])
    fixed = segment_overhead + system_cost
    budget = max_tokens - fixed

    dropped: list[tuple[int, int, str]] = []
    first_user = next((i for i in range(n_system, n) if turns[i].role == USER), n)
    if first_user > n_system:
        dropped.append((n_system, first_user, LEADING_NON_USER))

    result = SplitResult()
    for run in _exchanges(conv, first_user, dropped):
        asks = [is_continuation(turns[s].content) for s, _ in run]
        # Where each request to go on starts, and ends.
        asking = {s: e for (s, e), ask in zip(run, asks, strict=True) if ask}
        glued = _glue(run, asks, costs, budget) if asking else None
        for start, end, cost, flag in _plan_run(run, costs, budget, glued):
            if asking and continuations == "drop" and start > first_user:
                # Requests to go on that open a later segment anyway (no room for what they
                # continue) go, with what they got. A conversation that starts with one was
                # shared that way: its first segment is as the conversation is.
                lead = start
                while lead < end and lead in asking:
                    dropped.append((lead, asking[lead], NO_CONTEXT))
                    lead = asking[lead]
                if lead == end:
                    continue
                cost -= sum(costs[start:lead])
                start = lead
            if flag and oversize == "drop":
                dropped.append((start, end, OVERSIZE_EXCHANGE))
                continue
            meta = dict(conv.meta)
            if flag:
                meta["oversize"] = True
            result.segments.append(
                Conversation(
                    id=f"{conv.id}_{len(result.segments)}",
                    turns=[*system, *turns[start:end]],
                    meta=meta,
                    source=conv.source,
                    raw=conv.raw,
                )
            )
            result.segment_tokens.append(fixed + cost)
            result.spans.append((start, end))

    dropped.sort()
    # Last, not in turn order: it is a consequence of the other drops, which say why.
    if n_system and not result.segments:
        dropped.append((0, n_system, UNUSED_SYSTEM_PROMPT))
    result.dropped = [DroppedPart(s, e, reason, sum(costs[s:e])) for s, e, reason in dropped]
    return result


def fastchat_boundaries(counts: Sequence[int], max_length: int = 2048) -> list[tuple[int, int]]:
    """FastChat's ``split_one_sample`` rule, bugs included: the ``[start, end)`` ranges it emits.

    ``counts`` are per-message token counts as FastChat measures them (its tokenizer call adds
    special tokens, e.g. a BOS per message); each message costs 6 more. Kept only to compare
    against: it loses the final pair when that pair overflows, emits an empty segment and then one
    over the limit when a first pair is longer than ``max_length``, and ignores roles.
    """
    n = len(counts) // 2 * 2  # FastChat keeps an even number of messages
    if n < 2:
        return []
    lengths = [c + 6 for c in counts[:n]]
    out: list[tuple[int, int]] = []
    start = cur = 0
    for i in range(0, n, 2):
        pair = lengths[i] + lengths[i + 1]
        if cur + pair > max_length:
            out.append((start, i))
            start = i
            cur = 0
        elif i == n - 2:
            out.append((start, i + 2))
        cur += pair
    return out


def fastchat_split(
    conv: Conversation, counts: Sequence[int], max_length: int = 2048
) -> list[Conversation]:
    """FastChat's splitter applied to ``conv``: ids ``{id}_{start}``, only ``model`` kept in meta.

    See :func:`fastchat_boundaries` for the rule and its bugs; duplicate ids are possible.
    """
    return [
        Conversation(
            id=f"{conv.id}_{start}",
            turns=conv.turns[start:end],
            meta={"model": conv.meta.get("model", "")},
            source=conv.source,
            raw=conv.raw,
        )
        for start, end in fastchat_boundaries(counts, max_length)
    ]
