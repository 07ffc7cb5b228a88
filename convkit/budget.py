"""Splitting to a budget of *rendered* tokens: what a segment costs once a chat template wraps it.

The template's fixed parts (role headers, separators, BOS/EOS, frame) are measured once per
template and tokenizer (:func:`convkit.templates.template_overheads`) and folded into the
per-turn counts, so the compiled splitter packs with the right costs. Token merges across a
boundary between the template's text and a turn's text can make a rendering a few tokens longer
than that sum, so every segment is then rendered and counted exactly, in one batched call; when
one is over the limit, the conversation is packed again with the shortfall reserved per segment
(the reserve at least doubling from round to round, for templates whose text grows with position).
A segment of several exchanges still over the limit after those rounds is packed again exchange
by exchange, each candidate counted exactly; and an exchange is oversize only when its own exact
count is over the limit, never because of the reserve. What is written has been counted as it
will be trained on: no segment exceeds ``max_tokens`` rendered (unless it is a single exchange
kept with ``oversize="keep"``, flagged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .continuation import is_continuation
from .errors import ConfigError
from .model import USER, Conversation
from .split import (
    NO_CONTEXT,
    OVERSIZE_EXCHANGE,
    UNUSED_SYSTEM_PROMPT,
    DroppedPart,
    SplitResult,
    split_conversation,
)

#: Re-packing rounds with a growing reserve before what is still over the limit is packed exactly.
MAX_ROUNDS = 8

#: A segment, its span of the conversation's turns, and its exact rendered token count (None:
#: the template refuses to render it, and it is rejected with the template's reason).
Piece = tuple[Conversation, tuple[int, int], "int | None"]


@dataclass(slots=True)
class RenderedBudget:
    """A template, its measured overheads and a token counter, shared by every conversation."""

    template: Any  # convkit.templates.ChatTemplate
    counter: Any  # convkit.tokens.TokenCounter
    overheads: Any = None  # convkit.templates.TemplateOverheads, measured on first use

    def measure(self) -> Any:
        if self.overheads is None:
            from .templates import template_overheads

            self.overheads = template_overheads(self.template, self.counter)
        return self.overheads

    def check(self, max_tokens: int) -> None:
        """Refuse a limit that the template's fixed parts fill around the smallest exchange (a
        user and an assistant turn, with a system prompt when the template's own default one
        costs more): no conversation could yield a segment, a configuration mistake."""
        ov = self.measure()
        least = ov.segment + min(ov.turn.get("system", 0), 0)
        least = max(least, 0) + sum(max(ov.turn.get(r, 0), 0) for r in ("user", "assistant"))
        if least >= max_tokens:
            raise ConfigError(
                f"max_tokens {max_tokens} leaves no room for any exchange: chat template "
                f"{self.template.name!r} adds {least} tokens to the smallest one"
            )

    def exact(self, segments: Sequence[Conversation]) -> list[int | None]:
        """Rendered token counts; None for a segment the template refuses (the writer will
        reject it with the template's message)."""
        from .templates import TemplateRenderError, trained_counts

        texts: list[str] = []
        where: list[int | None] = []
        for seg in segments:
            try:
                texts.append(self.template.render_conversation(seg))
                where.append(len(texts) - 1)
            except TemplateRenderError:
                where.append(None)
        counts = trained_counts(self.counter, texts) if texts else []
        return [None if i is None else counts[i] for i in where]


def split_rendered(
    conv: Conversation,
    counts: Sequence[int],
    budget: RenderedBudget,
    *,
    max_tokens: int,
    oversize: str = "drop",
    continuations: str = "drop",
) -> SplitResult:
    """Split ``conv`` so that each segment, rendered through the template, fits ``max_tokens``.

    ``counts[i]`` is the token count of ``conv.turns[i].content`` alone. ``segment_tokens`` of
    the result are the exact rendered counts.
    """
    ov = budget.measure()
    n_system = len(conv.system_turns())
    fixed = ov.segment
    costs = []
    for i, (c, t) in enumerate(zip(counts, conv.turns, strict=True)):
        extra = ov.turn.get(t.role, ov.turn_overhead)
        if extra < 0 and i < n_system:
            # A system turn can cost less than nothing: it replaces the template's default
            # system prompt (Llama 2's), which the segment overhead counted. Every segment
            # carries the system prompt, so the saving belongs to the segment.
            fixed += extra
            extra = 0
        # Elsewhere a negative overhead would be a measuring artefact: counting 0 is the safe side.
        costs.append(c + max(extra, 0))
    fixed = max(fixed, 0)
    roles = conv.roles()
    reserve = 0
    for _ in range(MAX_ROUNDS):
        # Oversize exchanges are kept here, flagged, so that each is counted exactly: with a
        # reserve, the estimate calls an exchange oversize that may well fit.
        result = split_conversation(
            conv,
            costs,
            max_tokens=max_tokens,
            # What the template adds may fill the limit on its own (a long default system
            # prompt, for a conversation without one): every exchange is then oversize by the
            # estimate, and the exact counts decide each, instead of an error for the run.
            segment_overhead=min(fixed + reserve, max_tokens - 1),
            oversize="keep",
            continuations="keep",
        )
        exact = budget.exact(result.segments)
        # Only a segment of several exchanges can be packed differently.
        short = max(
            (
                e - max_tokens
                for e, span in zip(exact, result.spans, strict=True)
                if e is not None and len(_exchanges(roles, span)) > 1
            ),
            default=0,
        )
        # The reserve at least doubles: a template whose text grows with a turn's position
        # (numbered rounds) is underestimated more the longer the segment, and a shortfall of
        # a few tokens per round would run out of rounds with segments still too long.
        grown = reserve + max(short, reserve)
        if short <= 0 or fixed + grown >= max_tokens:
            # Fits; or what the template adds to every segment of this conversation (a long
            # tool list, say) leaves no room for more reserve: the last step packs what is
            # still over the limit exactly.
            break
        reserve = grown
    dropped = list(result.dropped)
    pieces = _pack_exactly(conv, roles, result, exact, costs, budget, max_tokens)
    pieces = _place_continuations(conv, roles, pieces, costs, budget, max_tokens, continuations,
                                  dropped)
    return _settle(conv, pieces, dropped, costs, max_tokens, oversize)


def _place_continuations(
    conv: Conversation,
    roles: list[str],
    pieces: list[Piece],
    costs: list[int],
    budget: RenderedBudget,
    max_tokens: int,
    continuations: str,
    dropped: list[DroppedPart],
) -> list[Piece]:
    """The splitter's rule for requests to go on (:mod:`convkit.continuation`), on exact
    counts: a segment that a request opens, after the conversation's first one, takes the
    segment before it, or the exchange it continues from that segment, when the rendering fits;
    otherwise its leading requests go to ``dropped`` as ``no_context`` (``continuations`` drop)
    or it stays as it is (keep). The rounds plan with ``keep``: with a reserve, the estimate
    parts requests from what they continue though the two may fit."""
    turns = conv.turns
    system = conv.system_turns()
    # As split_conversation: only a segment at the first user turn is as the conversation is.
    first = next((i for i in range(len(system), len(turns)) if roles[i] == USER), len(turns))
    out: list[Piece] = []

    def counted(start: int, end: int) -> Piece | None:
        seg = _segment(conv, system, start, end)
        (n,) = budget.exact([seg])
        return None if n is None or n > max_tokens else (seg, (start, end), n)

    for piece in pieces:
        start, end = piece[1]
        if start <= first or not is_continuation(turns[start].content):
            out.append(piece)
            continue
        if out and out[-1][1][1] == start:
            before = out[-1][1][0]
            whole = counted(before, end)
            if whole is not None:
                out[-1] = whole
                continue
            # The exchange it continues (with the requests already after it) comes along.
            group = max(
                (s for s, _ in _exchanges(roles, (before, start))
                 if not is_continuation(turns[s].content)),
                default=before,
            )
            moved = counted(group, end) if group > before else None
            rest = counted(before, group) if moved is not None else None
            if moved is not None and rest is not None:
                out[-1] = rest
                out.append(moved)
                continue
        if continuations == "keep":
            out.append(piece)
            continue
        lead = start
        for s, e in _exchanges(roles, piece[1]):
            if s != lead or not is_continuation(turns[s].content):
                break
            dropped.append(DroppedPart(s, e, NO_CONTEXT, sum(costs[s:e])))
            lead = e
        if lead < end:
            seg = _segment(conv, system, lead, end)
            (n,) = budget.exact([seg])
            out.append((seg, (lead, end), n))
    return out


def _exchanges(roles: list[str], span: tuple[int, int]) -> list[tuple[int, int]]:
    """The exchanges of a segment's turns ``[start, end)``: a new one opens at a user turn that
    follows another role (as :mod:`convkit.split` groups them)."""
    start, end = span
    cuts = [i for i in range(start + 1, end) if roles[i] == USER and roles[i - 1] != USER]
    bounds = [start, *cuts, end]
    return list(pairwise(bounds))


def _pack_exactly(
    conv: Conversation,
    roles: list[str],
    result: SplitResult,
    exact: list[int | None],
    costs: list[int],
    budget: RenderedBudget,
    max_tokens: int,
) -> list[Piece]:
    """Each segment with its span and exact token count (None when the template refuses it). A
    segment of several exchanges over the limit, or refused, is replaced by segments packed
    greedily, each candidate rendered and counted: what the template refuses is then as small
    as it can be, and the exchanges it does render are kept."""
    out = []
    for seg, span, n in zip(result.segments, result.spans, exact, strict=True):
        exchanges = _exchanges(roles, span)
        if (n is not None and n <= max_tokens) or len(exchanges) == 1:
            out.append((seg, span, n))
            continue
        system = seg.turns[: len(seg.turns) - (span[1] - span[0])]
        start, end = exchanges[0]
        packed = []
        for s, e in exchanges[1:]:
            (count,) = budget.exact([_segment(conv, system, start, e)])
            if count is not None and count <= max_tokens:
                end = e
            else:
                packed.append((start, end))
                start, end = s, e
        packed.append((start, end))
        pieces = [_segment(conv, system, s, e) for s, e in packed]
        for piece, (s, e), count in zip(pieces, packed, budget.exact(pieces), strict=True):
            out.append((piece, (s, e), count))
    return out


def _segment(conv: Conversation, system: list[Any], start: int, end: int) -> Conversation:
    # As split_conversation makes one; _settle numbers the ids.
    return Conversation(conv.id, [*system, *conv.turns[start:end]], dict(conv.meta), conv.source,
                        conv.raw)


def _settle(
    conv: Conversation,
    pieces: list[Piece],
    dropped: list[DroppedPart],
    costs: list[int],
    max_tokens: int,
    oversize: str,
) -> SplitResult:
    """Exact counts decide: a segment over the limit is a single exchange by now, an oversize
    one (dropped or flagged by the policy); a segment that fits is never flagged."""
    out = SplitResult()
    dropped = list(dropped)
    for seg, span, n in pieces:
        if n is None:
            # The template refuses it: the text writer, or the check of a count template,
            # rejects it with the template's own message (template_error).
            n = 0
        elif n > max_tokens:
            if oversize == "drop":
                dropped.append(DroppedPart(span[0], span[1], OVERSIZE_EXCHANGE, n))
                continue
            seg.meta["oversize"] = True
        else:
            seg.meta.pop("oversize", None)
        seg.id = f"{conv.id}_{len(out.segments)}"
        out.segments.append(seg)
        out.spans.append(span)
        out.segment_tokens.append(n)
    n_system = len(conv.system_turns())
    if n_system and not out.segments and all(d.reason != UNUSED_SYSTEM_PROMPT for d in dropped):
        dropped.append(DroppedPart(0, n_system, UNUSED_SYSTEM_PROMPT, sum(costs[:n_system])))
    out.dropped = sorted(dropped, key=lambda d: (d.reason == UNUSED_SYSTEM_PROMPT, d.start))
    return out
