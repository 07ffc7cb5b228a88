"""Counts and timings of one run, mergeable across worker processes.

The accounting invariant: every conversation read (and every record that could not be read)
is either written or rejected with a reason, so ``in == out + sum(rejected.values())``. With
``on_error="skip"`` a broken JSON array cannot be read past its error: such an input is listed
in ``cut_short``, and the run is not ``accounted`` (what followed the error was never counted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

STAGES = ("read", "convert", "filter", "tokenize", "split", "write")


@dataclass(slots=True)
class Stats:
    records: int = 0  # raw records read (a record may hold several conversations)
    conversations_in: int = 0  # conversations read, plus records that could not be read
    conversations_out: int = 0  # conversations with at least one segment written
    rejected: Counter[str] = field(default_factory=Counter)  # whole conversations, by reason
    parts_rejected: Counter[str] = field(default_factory=Counter)  # dropped turns, by reason
    segments: int = 0
    turns_out: int = 0
    tokens_out: int = 0
    html_turns: int = 0  # turns converted from HTML
    seconds: Counter[str] = field(default_factory=Counter)  # CPU time per stage, all workers
    cut_short: list[str] = field(default_factory=list)  # inputs not readable past an error

    def merge(self, other: Stats) -> None:
        self.records += other.records
        self.conversations_in += other.conversations_in
        self.conversations_out += other.conversations_out
        self.rejected.update(other.rejected)
        self.parts_rejected.update(other.parts_rejected)
        self.segments += other.segments
        self.turns_out += other.turns_out
        self.tokens_out += other.tokens_out
        self.html_turns += other.html_turns
        self.seconds.update(other.seconds)
        self.cut_short += other.cut_short

    @property
    def balanced(self) -> bool:
        return self.conversations_in == self.conversations_out + sum(self.rejected.values())

    @property
    def accounted(self) -> bool:
        """Every record of every input was counted, and each one written or rejected."""
        return self.balanced and not self.cut_short

    def to_dict(
        self, *, wall_seconds: float | None = None, tokenized: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "records": self.records,
            "conversations_in": self.conversations_in,
            "conversations_out": self.conversations_out,
            "conversations_rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "parts_rejected": sum(self.parts_rejected.values()),
            "parts_rejected_by_reason": dict(sorted(self.parts_rejected.items())),
            "accounted": self.accounted,
            "inputs_cut_short": sorted(self.cut_short),
            "segments": self.segments,
            "turns": self.turns_out,
            "html_turns_converted": self.html_turns,
        }
        if tokenized:
            out["tokens"] = self.tokens_out
        out["seconds"] = {s: round(self.seconds.get(s, 0.0), 3) for s in STAGES}
        if wall_seconds is not None:
            out["seconds"]["wall"] = round(wall_seconds, 3)
        return out

    def summary(self) -> str:
        """The short human report printed on stderr."""
        rej = sum(self.rejected.values())
        lines = [
            f"convkit: {self.conversations_in} conversations in, {self.conversations_out} kept "
            f"as {self.segments} segments, {rej} rejected"
            + (
                f", {_plural(sum(self.parts_rejected.values()), 'part')} dropped"
                if self.parts_rejected
                else ""
            )
        ]
        for reason, n in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  rejected {reason}: {n}")
        for reason, n in sorted(self.parts_rejected.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  dropped part {reason}: {n}")
        for name in sorted(self.cut_short):
            lines.append(f"  not read past its error (records after it are not counted): {name}")
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
