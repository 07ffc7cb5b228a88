"""The work done on a batch of records inside one worker process.

Everything here is a pure function of the batch and the options, so the main process can hand
batches to any number of workers and get byte-identical results back in order. Results cross
the process boundary already serialised (output lines, rejects lines), which is far cheaper to
pickle than conversation objects.
"""
from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .filters import Dedup, FilterChain
from .formats import RecordRejected, detect_format, get_format
from .formats.base import Format
from .io import BadRecord, RawRecord, dumps
from .markdown import html_to_markdown, looks_like_html
from .model import ASSISTANT, Conversation, Source, Turn
from .options import Options
from .stats import Stats


@dataclass(slots=True)
class Item:
    """The fate of one conversation (or of one record that yielded none)."""

    id: str | None
    keys: tuple[Hashable, ...] = ()  # dedup keys, checked in the main process in input order
    lines: list[bytes] = field(default_factory=list)  # output records of its segments
    rejects: list[bytes] = field(default_factory=list)  # rejects lines (whole or parts)
    rejected: str | None = None  # the reason when the whole conversation was rejected
    part_reasons: list[str] = field(default_factory=list)  # reasons of the dropped parts
    segments: int = 0
    turns: int = 0
    tokens: int = 0
    raw: bytes = b""  # the original record, serialised, for a dedup reject line
    source: Source | None = None


class Worker:
    """The per-process state built once from :class:`Options`: formats, filters, tokenizer."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.reader: Format | None = (
            None if options.input_format == "auto" else get_format(options.input_format)
        )
        self.writer = get_format(options.output_format)
        self.chain = FilterChain.from_config(options.filters)
        self.dedup_keys = Dedup.from_config(options.filters).filters
        self.counter = None
        self.segment_overhead = options.segment_overhead or 0
        if options.max_tokens is not None:
            from .tokens import TokenCounter

            self.counter = TokenCounter(options.tokenizer)
            if options.segment_overhead is None:
                self.segment_overhead = self.counter.special_tokens

    # ------------------------------------------------------------------ one batch

    def run(self, batch: list[RawRecord | BadRecord]) -> tuple[list[Item], Stats]:
        stats = Stats()
        items: list[Item] = []
        pending: list[tuple[Item, Conversation, Any]] = []  # kept conversations awaiting output
        clock = time.perf_counter
        for rec in batch:
            stats.records += 1
            if isinstance(rec, BadRecord):
                stats.conversations_in += 1
                items.append(self._bad_record(rec, stats))
                continue
            source = Source(rec.file, rec.index, rec.line)
            t0 = clock()
            try:
                convs = list(self._read(rec.value, source))
            except RecordRejected as e:
                stats.seconds["read"] += clock() - t0
                stats.conversations_in += 1
                items.append(self._reject_record(rec, source, e.reason, e.message, stats))
                continue
            stats.seconds["read"] += clock() - t0
            raw = dumps(rec.value)
            if not convs:
                stats.conversations_in += 1
                items.append(self._reject_record(rec, source, "no_conversation", "the record holds no conversation", stats, raw))
                continue
            for conv in convs:
                stats.conversations_in += 1
                item = Item(conv.id, raw=raw, source=source)
                items.append(item)
                t0 = clock()
                self._convert(conv, stats)
                t1 = clock()
                stats.seconds["convert"] += t1 - t0
                outcome = self.chain.apply(conv)
                stats.seconds["filter"] += clock() - t1
                if outcome.conv is None:
                    self._reject(item, conv, outcome.reason, outcome.detail, stats)
                    continue
                for part in outcome.parts:
                    self._reject_part(item, conv, part.start, part.end, part.reason, None, stats)
                kept = outcome.conv
                item.keys = tuple(f.key(kept) for f in self.dedup_keys)
                pending.append((item, kept, conv))
        if self.counter is None:
            t0 = clock()
            for item, kept, _ in pending:
                self._emit(item, [kept], None)
            stats.seconds["write"] += clock() - t0
        else:
            self._split_all(pending, stats)
        for item in items:
            stats.segments += item.segments
            stats.turns_out += item.turns
            stats.tokens_out += item.tokens
        return items, stats

    # ------------------------------------------------------------------ steps

    def _read(self, value: Any, source: Source):
        reader = self.reader
        if reader is None:
            reader = detect_format(value)
            if reader is None:
                raise RecordRejected("unknown_format", "no reader recognises this record")
        return reader.read(value, source)

    def _convert(self, conv: Conversation, stats: Stats) -> None:
        mode = self.options.html
        if mode == "never":
            return
        compat = self.options.compat
        for turn in conv.turns:
            # Only assistant turns were page HTML; a user's "<div>" is text they typed.
            if turn.role != ASSISTANT:
                continue
            if mode == "always" or looks_like_html(turn.content):
                turn.content = html_to_markdown(turn.content, compat=compat)
                stats.html_turns += 1

    def _split_all(self, pending: list[tuple[Item, Conversation, Any]], stats: Stats) -> None:
        from .split import split_conversation

        assert self.counter is not None
        clock = time.perf_counter
        t0 = clock()
        texts = [t.content for _, kept, _ in pending for t in kept.turns]
        counts = self.counter.count(texts)
        t1 = clock()
        stats.seconds["tokenize"] += t1 - t0
        at = 0
        opts = self.options
        for item, kept, arrived in pending:
            n = len(kept.turns)
            t1 = clock()
            result = split_conversation(
                kept,
                counts[at : at + n],
                max_tokens=opts.max_tokens,
                turn_overhead=opts.turn_overhead,
                segment_overhead=self.segment_overhead,
                oversize=opts.oversize,
            )
            t2 = clock()
            stats.seconds["split"] += t2 - t1
            at += n
            if not result.segments:
                reason = result.dropped[0].reason if result.dropped else "no_segment"
                self._reject(item, arrived, reason, "no exchange fits in a segment", stats)
                stats.seconds["write"] += clock() - t2
                continue
            for part in result.dropped:
                self._reject_part(
                    item, kept, part.start, part.end, part.reason, f"{part.tokens} tokens", stats
                )
            self._emit(item, result.segments, result.segment_tokens)
            stats.seconds["write"] += clock() - t2

    def _emit(self, item: Item, segments: list[Conversation], tokens: list[int] | None) -> None:
        write = self.writer.write
        for seg in segments:
            item.lines.append(dumps(write(seg)))
            item.turns += len(seg.turns)
        item.segments = len(segments)
        if tokens is not None:
            item.tokens = sum(tokens)

    # ------------------------------------------------------------------ rejects

    def _reject(
        self, item: Item, conv: Conversation, reason: str | None, detail: str | None, stats: Stats
    ) -> None:
        reason = reason or "rejected"
        item.rejected = reason
        stats.rejected[reason] += 1
        item.rejects.append(reject_line(item.id, reason, detail, item.source, "conversation", None, item.raw))

    def _reject_part(
        self,
        item: Item,
        conv: Conversation,
        start: int,
        end: int,
        reason: str,
        detail: str | None,
        stats: Stats,
    ) -> None:
        stats.parts_rejected[reason] += 1
        item.part_reasons.append(reason)
        turns = [turn_dict(t) for t in conv.turns[start:end]]
        item.rejects.append(
            reject_line(item.id, reason, detail, item.source, "turns", turns, item.raw)
        )

    def _reject_record(
        self,
        rec: RawRecord,
        source: Source,
        reason: str,
        detail: str,
        stats: Stats,
        raw: bytes | None = None,
    ) -> Item:
        rid = rec.value.get("id") if isinstance(rec.value, dict) else None
        rid = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
        item = Item(None if rid is None else str(rid), source=source, rejected=reason)
        stats.rejected[reason] += 1
        raw = dumps(rec.value) if raw is None else raw
        item.rejects.append(reject_line(item.id, reason, detail, source, "record", None, raw))
        return item

    def _bad_record(self, rec: BadRecord, stats: Stats) -> Item:
        source = Source(rec.file, rec.index, rec.line)
        reason = "malformed_json"
        detail = str(rec.error)
        if not rec.resumable:
            detail += "; the rest of this input could not be read"
        stats.rejected[reason] += 1
        item = Item(None, source=source, rejected=reason)
        item.rejects.append(
            reject_line(None, reason, detail, source, "record", None, dumps(rec.text))
        )
        return item


def turn_dict(t: Turn) -> dict[str, Any]:
    return {"role": t.role, "content": t.content}


def reject_line(
    rid: str | None,
    reason: str,
    detail: str | None,
    source: Source | None,
    scope: str,
    turns: list[dict[str, Any]] | None,
    raw: bytes,
) -> bytes:
    """One rejects record: id, reason, where it came from, what was dropped, the original record.

    The original record is spliced in as already-serialised JSON, so it is encoded once however
    many parts of it are rejected.
    """
    head: dict[str, Any] = {"id": rid, "reason": reason}
    if detail:
        head["detail"] = detail
    if source is not None:
        head["file"] = source.file
        head["index"] = source.index
        if source.line is not None:
            head["line"] = source.line
    head["scope"] = scope
    if turns is not None:
        head["turns"] = turns
    return dumps(head)[:-1] + b',"record":' + raw + b"}"


_worker: Worker | None = None


def init_worker(options: Options) -> None:
    """Pool initializer: build this process's :class:`Worker` once."""
    global _worker
    _worker = Worker(options)


def run_batch(batch: list[RawRecord | BadRecord]) -> tuple[list[Item], Stats]:
    assert _worker is not None, "init_worker was not called"
    return _worker.run(batch)
