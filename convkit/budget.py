"""Splitting to a budget of *rendered* tokens: what a segment costs once a chat template wraps it.

The template's fixed parts (role headers, separators, BOS/EOS, frame) are measured once per
template and tokenizer (:func:`convkit.templates.template_overheads`) and folded into the
per-turn counts, so the compiled splitter packs with the right costs. Token merges across a
boundary between the template's text and a turn's text can make a rendering a few tokens longer
than that sum, so every segment is then rendered and counted exactly, in one batched call; when
one is over the limit, the conversation is packed again with the shortfall reserved per segment
(the reserve at least doubling from round to round, for templates whose text grows with position).
What is written has been counted as it will be trained on: no segment exceeds ``max_tokens``
rendered (unless it is a single exchange kept with ``oversize="keep"``, flagged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .model import Conversation
from .split import OVERSIZE_EXCHANGE, DroppedPart, SplitResult, split_conversation

#: Re-packing rounds before the segments still over the limit are treated as oversize.
MAX_ROUNDS = 8


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
    reserve = 0
    for _ in range(MAX_ROUNDS):
        result = split_conversation(
            conv, costs, max_tokens=max_tokens, segment_overhead=fixed + reserve, oversize=oversize
        )
        exact = budget.exact(result.segments)
        short = max(
            (
                e - max_tokens
                for e, s in zip(exact, result.segments, strict=True)
                if e is not None and not s.meta.get("oversize")
            ),
            default=0,
        )
        # The reserve at least doubles: a template whose text grows with a turn's position
        # (numbered rounds) is underestimated more the longer the segment, and a shortfall of
        # a few tokens per round would run out of rounds with segments still too long.
        grown = reserve + max(short, reserve)
        if short <= 0 or fixed + grown >= max_tokens:
            # Fits; or what the template adds to every segment of this conversation (a long
            # tool list, say) leaves no room for an exchange: its over-limit segments are then
            # oversize exchanges, this conversation's alone.
            break
        reserve = grown
    return _settle(result, exact, max_tokens, oversize)


def _settle(
    result: SplitResult, exact: list[int | None], max_tokens: int, oversize: str
) -> SplitResult:
    """Replace estimates by exact counts; a segment still over the limit after the re-packing
    rounds is an oversize exchange (dropped or flagged by the policy)."""
    out = SplitResult()
    dropped = list(result.dropped)
    rows = zip(result.segments, result.spans, result.segment_tokens, exact, strict=True)
    for seg, span, est, tokens in rows:
        n = est if tokens is None else tokens
        if n > max_tokens and not seg.meta.get("oversize"):
            if oversize == "drop":
                dropped.append(DroppedPart(span[0], span[1], OVERSIZE_EXCHANGE, n))
                continue
            seg.meta["oversize"] = True
        seg.id = f"{seg.id.rsplit('_', 1)[0]}_{len(out.segments)}"
        out.segments.append(seg)
        out.spans.append(span)
        out.segment_tokens.append(n)
    out.dropped = sorted(dropped, key=lambda d: (d.reason == "unused_system_prompt", d.start))
    return out
