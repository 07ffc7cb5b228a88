"""The work done on a batch of records inside one worker process.

Everything here is a pure function of the batch and the options, so the main process can hand
batches to any number of workers and get byte-identical results back in order. Results cross
the process boundary already serialised (output lines, rejects lines), which is far cheaper to
pickle than conversation objects.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Generator, Hashable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .budget import RenderedBudget, split_rendered
from .errors import InputError
from .filters import Dedup, FilterChain
from .formats import RecordRejected, Rejection, get_format
from .formats._keys import ESCAPE, rekey
from .formats.base import Format
from .io import BadRecord, RawRecord, dumps, has_lone_surrogate, json_text, trimmed
from .markdown import html_to_markdown, looks_like_html
from .markdown.noise import strip_regeneration_counter
from .model import ASSISTANT, TURN_META_KEYS, USER, Conversation, Source, Turn, tool_calls
from .options import Options
from .stats import Stats

if TYPE_CHECKING:
    from .tokens import TokenCounter


class Item:
    """The fate of one conversation (or of one record that yielded none).

    A plain slotted class, not a dataclass: one is made per conversation, and positional
    arguments into a hand-written ``__init__`` cost half of a dataclass's keyword call.
    """

    __slots__ = (
        "id",
        "keys",
        "lines",
        "part_reasons",
        "raw",
        "raw_cache",
        "record",
        "rejected",
        "rejects",
        "segments",
        "source",
        "tokens",
        "turns",
    )

    def __init__(
        self,
        id: str | None,
        source: Source | None,
        record: Any = None,
        raw_cache: dict[int, bytes] | None = None,
        rejected: str | None = None,
    ) -> None:
        self.id = id
        self.source = source
        self.record = record  # the original record, inside the worker only (not sent back)
        # Serialised records of the batch by id(record), shared by the items of one record (a
        # task file yields many conversations); per batch, so that ids are never reused.
        self.raw_cache = raw_cache
        self.rejected = rejected  # the reason when the whole conversation was rejected
        self.keys: tuple[Hashable, ...] = ()  # dedup keys, checked in the main process in order
        self.lines: list[bytes] = []  # output records of its segments
        self.rejects: list[bytes] = []  # rejects lines (whole or parts)
        self.part_reasons: list[str] = []  # reasons of the dropped parts
        self.segments = 0
        self.turns = 0
        self.tokens = 0
        self.raw = b""  # the original record, serialised once it is needed for a reject line


@dataclass(slots=True)
class Done:
    """A finished batch. Without dedup filters nothing the main process does can change a
    conversation's fate, so the worker hands back the batch's output lines and rejects lines,
    in order, and no items; with them, ``items`` go back (``lines`` and ``rejects`` empty) for
    the dedup check, which must see conversations in input order across batches."""

    items: list[Item]
    stats: Stats
    lines: list[bytes]
    rejects: list[bytes]


@dataclass(slots=True)
class Staged:
    """A batch after :meth:`Worker.stage`: read, and its HTML listed for a converter thread."""

    stream: list[Any]  # conversations, rejections and bad records, in order
    stats: Stats
    turns: list[tuple[int, Turn]]  # (index in stream, turn) of each HTML message, in order
    htmls: list[str]  # their content
    failed: dict[int, Exception]  # errors listing a conversation's turns, by index in stream


@dataclass(slots=True)
class Prepared:
    """A batch after :meth:`Worker.prepare`: read, converted, filtered; not yet tokenised."""

    items: list[Item]
    pending: list[tuple[Item, Conversation]]  # kept conversations awaiting output
    stats: Stats


class Worker:
    """The per-process state built once from :class:`Options`: formats, filters, tokenizer."""

    def __init__(
        self, options: Options, counter: TokenCounter | None = None, rejects: bool = True
    ) -> None:
        """``rejects``: write reject lines (a run without a rejects file only counts them)."""
        self.options = options
        self.rejects = rejects
        self.reader: Format = get_format(options.input_format, **options.reader_options)
        self.writer = get_format(options.resolved_output_format(), **options.writer_options)
        if self.writer.name == "text":
            # The run's one time (Options.template_time), in every worker alike.
            self.writer.template.now = options.template_now()  # type: ignore[attr-defined]
        self.chain = FilterChain.from_config(options.filters)
        self.dedup = Dedup.from_config(options.filters)
        self.counter = None
        self.budget: RenderedBudget | None = None
        self.segment_overhead = options.segment_overhead or 0
        if options.max_tokens is not None:
            if counter is None:
                from .tokens import TokenCounter

                counter = TokenCounter(options.tokenizer)
            self.counter = counter
            if options.segment_overhead is None:
                self.segment_overhead = self.counter.special_tokens
            self.budget = rendered_budget(options, self.writer, self.counter)
            if self.budget is not None:
                self.budget.check(options.max_tokens)
        # Counted through a template but written otherwise (count_template): a segment the
        # template refuses has no exact count and would fail when rendered for training, so it
        # is rejected as the text writer would reject it.
        self.render_check = (
            self.budget.template
            if self.budget is not None and self.writer.name != "text"
            else None
        )

    # ------------------------------------------------------------------ one batch

    def run(self, batch: list[Any]) -> Done:
        """Process a batch of raw records (or, for a stateful reader, of what the main
        process already read from them: conversations and rejections), in order."""
        return self.finish(self.prepare(batch))

    def prepare(self, batch: list[Any]) -> Prepared:
        """The first half of :meth:`run`: read, convert HTML, filter, compute dedup keys."""
        return self.filter(self.stage(batch))

    def stage(self, batch: list[Any], aside: bool = False) -> Staged:
        """Read a batch; ``aside``: list its HTML messages too, for a converter thread
        (:class:`convkit.markdown._fast.BatchConverter`), whose results go to :meth:`filter`."""
        stats = Stats()
        t0 = time.perf_counter()
        # A stateful reader has already read the records in the main process (see pipeline).
        stream = batch if self.reader.stateful else list(self.reader.read_stream(batch))
        stats.seconds["read"] += time.perf_counter() - t0
        stats.conversations_in += len(stream)
        turns: list[tuple[int, Turn]] = []
        htmls: list[str] = []
        failed: dict[int, Exception] = {}
        if aside:
            # The thread decides which assistant turns are page HTML (detect): listed here are
            # those that may be.
            for i, got in enumerate(stream):
                if got.__class__ is Conversation:
                    try:
                        for turn in self._html_turns(got, candidates=True):
                            turns.append((i, turn))
                            htmls.append(turn.content)
                    except Exception as e:  # noqa: BLE001 - rejects the record (see filter)
                        failed[i] = e
        return Staged(stream, stats, turns, htmls, failed)

    def filter(
        self,
        staged: Staged,
        converted: list[Any] | None = None,
        seconds: float = 0.0,
        digests: list[bytes | None] | None = None,
    ) -> Prepared:
        """The rest of :meth:`prepare`: convert HTML (or take ``converted``, the converter
        thread's results for ``staged.htmls``, which took it ``seconds``, with the dedup
        digests of their text, ``digests``, where it computed them), filter, compute dedup
        keys."""
        stream, stats = staged.stream, staged.stats
        items: list[Item] = []
        pending: list[tuple[Item, Conversation]] = []
        cache: dict[int, bytes] = {}
        clock = time.perf_counter
        convert = None if self.options.html == "never" else self._convert
        failed: dict[int, Exception] = {}
        if converted is not None:
            convert = None
            failed = _take_converted(staged, converted, stats)
            stats.seconds["convert"] += seconds
        apply = self.chain.apply
        keys = self.dedup.keys if self.dedup.filters else None
        known = None
        if digests is not None and converted is not None and keys is not None:
            # By identity: a turn whose text a filter replaced is hashed again.
            known = {id(md): (md, d) for md, d in zip(converted, digests) if d is not None}
        converting = 0.0
        started = clock()
        for i, got in enumerate(stream):
            if got.__class__ is not Conversation:
                if isinstance(got, BadRecord):
                    items.append(self._bad_record(got, stats))
                    continue
                if isinstance(got, Rejection):
                    items.append(self._rejection(got, stats))
                    continue
            conv: Conversation = got
            item = Item(conv.id, conv.source, conv.raw, cache)
            items.append(item)
            try:
                if convert is not None:
                    t0 = clock()
                    convert(conv, stats)
                    converting += clock() - t0
                elif failed and i in failed:
                    raise failed[i]
                outcome = apply(conv)
            except InputError as e:  # markup FastChat's converter cannot take (compat mode)
                self._reject(item, "html_parse_error", e.reason, stats)
                continue
            except Exception as e:  # noqa: BLE001 - one bad record must not stop a 90k-record run
                self._reject(item, "processing_error", f"{type(e).__name__}: {e}", stats)
                continue
            kept = outcome.conv
            if kept is None:
                self._reject(item, outcome.reason, outcome.detail, stats)
                continue
            for part in outcome.parts:
                self._reject_part(item, conv, part.start, part.end, part.reason, None, stats)
            if keys is not None:
                try:
                    item.keys = keys(kept, known)
                except Exception as e:  # noqa: BLE001 - as above: one record, not the run
                    _withdraw_parts(item, stats)
                    self._reject(item, "processing_error", f"{type(e).__name__}: {e}", stats)
                    continue
            pending.append((item, kept))
        # The filter stage's clock is the loop's, less conversion: two clock calls a record
        # cost a percent of a plain conversion.
        stats.seconds["convert"] += converting
        stats.seconds["filter"] += clock() - started - converting
        return Prepared(items, pending, stats)

    def finish(self, prepared: Prepared) -> Done:
        """The second half of :meth:`run`: tokenise, split, serialise."""
        return self.finish_many([prepared])[0]

    def finish_many(self, prepared: list[Prepared]) -> list[Done]:
        """:meth:`finish` of several batches, their kept text counted in one tokenizer call."""
        return self.finish_counted(prepared, self.count_many(prepared))

    def count_many(self, prepared: list[Prepared]) -> list[int]:
        """The token counts of the kept turns of several batches, in order, from one tokenizer
        call (none without a tokenizer). It touches nothing that :meth:`prepare` or
        :meth:`finish_counted` of other batches use, so they may run on other threads: the
        tokenizer releases the GIL while later batches are converted and earlier ones split."""
        counts: list[int] = []
        if self.counter is not None and prepared:
            t0 = time.perf_counter()
            try:
                counts = self.counter.count(_counted_texts(prepared))
            except TypeError:
                # The tokenizers library takes no lone surrogate (a JSON "\ud800" escape) and
                # says only that a text is not a string: such conversations are rejected and
                # the rest counted again. Looked for only then: the normal run pays nothing.
                if not self._reject_untokenizable(prepared):
                    raise
                counts = self.counter.count(_counted_texts(prepared))
            prepared[0].stats.seconds["tokenize"] += time.perf_counter() - t0
        return counts

    def finish_counted(self, prepared: list[Prepared], counts: list[int]) -> list[Done]:
        """Split (with ``counts``, from :meth:`count_many` of the same batches) and serialise."""
        at = 0
        done = []
        for p in prepared:
            items, pending, stats = p.items, p.pending, p.stats
            packed = not self.dedup.filters
            lines: list[bytes] = []
            written = 0
            if self.counter is None:
                t0 = time.perf_counter()
                if packed:
                    written = self._write_whole(pending, lines, stats)
                else:
                    for item, kept in pending:
                        self._emit(item, [kept], None, stats)
                stats.seconds["write"] += time.perf_counter() - t0
            else:
                at = self._split_all(pending, counts, at, stats)
            if not packed:
                for item in items:
                    # Records go back only inside reject lines: the main process still holds
                    # the batch it sent, and pickling every record back would double the
                    # traffic between processes.
                    item.record = None
                    item.raw = b""
                    item.raw_cache = None
                done.append(Done(items, stats, [], []))
                continue
            rejects: list[bytes] = []
            for item in items:
                if item.lines:  # split segments (whole conversations are in lines already)
                    written += 1
                    lines += item.lines
                if item.rejects:
                    rejects += item.rejects
            stats.conversations_out += written
            done.append(Done([], stats, lines, rejects))
        return done

    # ------------------------------------------------------------------ steps

    def _convert(self, conv: Conversation, stats: Stats) -> None:
        if self.options.html == "never":
            return
        if self.options.compat == "fastchat":
            # FastChat runs every message through its html_to_markdown, user turns included.
            for turn in conv.turns:
                if turn.role in (USER, ASSISTANT):
                    turn.content = html_to_markdown(turn.content, compat="fastchat")
                    stats.html_turns += 1
            return
        engine = self.options.html_engine
        for turn in self._html_turns(conv):
            turn.content = html_to_markdown(turn.content, engine=engine)
            stats.html_turns += 1

    def _html_turns(self, conv: Conversation, candidates: bool = False) -> Iterator[Turn]:
        """The turns whose content is page HTML to convert (with convkit's rules), in order;
        the edit counters the page glued to user turns are stripped on the way.
        ``candidates``: the turns that may be page HTML, which the converter thread tells
        (``BatchConverter(detect=...)``, see :func:`converter_detects`)."""
        scraped = conv.scraped
        mode = self.options.html
        if mode == "never" or (mode == "auto" and not scraped):
            return  # text from an API or a dataset: a "<table>" in it is what the model wrote
        for turn in conv.turns:
            # Only assistant turns were page HTML; a user's "<div>" is text they typed. The
            # page did glue its "2 / 2" edit counter to the start of user turns, though.
            if turn.role == USER:
                if scraped:
                    turn.content = strip_regeneration_counter(turn.content)
            elif turn.role == ASSISTANT and (
                mode == "always" or candidates or looks_like_html(turn.content)
            ):
                yield turn

    def _reject_untokenizable(self, prepared: list[Prepared]) -> bool:
        """Reject the kept conversations whose counted text holds a lone surrogate; whether
        there was one."""
        found = False
        for p in prepared:
            keep = []
            for item, kept in p.pending:
                turn = _lone_surrogate_turn(kept)
                if turn is None:
                    keep.append((item, kept))
                    continue
                found = True
                _withdraw_parts(item, p.stats)
                # The role, not an index: the filters may have trimmed turns before it.
                detail = (
                    f"a turn of role {turn.role} holds a lone surrogate (read from a JSON "
                    "\\ud800 escape), which the tokenizer cannot encode"
                )
                self._reject(item, UNTOKENIZABLE, detail, p.stats)
            p.pending[:] = keep
        return found

    def _split_all(
        self, pending: list[tuple[Item, Conversation]], counts: list[int], at: int, stats: Stats
    ) -> int:
        """Split and serialise the kept conversations, whose turns' token counts start at
        ``counts[at]``; returns where the next batch's counts start."""
        from .split import split_conversation

        clock = time.perf_counter
        opts = self.options
        for item, kept in pending:
            n = len(kept.turns)
            t1 = clock()
            if self.budget is not None:
                try:
                    result = split_rendered(
                        kept,
                        counts[at : at + n],
                        self.budget,
                        max_tokens=opts.max_tokens,
                        oversize=opts.oversize,
                        continuations=opts.continuations,
                    )
                except TypeError:
                    # The template renders fields beside the turns' text (a tool's name, say):
                    # a lone surrogate there reaches the tokenizer only now.
                    if not _holds_surrogate(kept):
                        raise
                    at += n
                    _withdraw_parts(item, stats)
                    self._reject(item, UNTOKENIZABLE, _RENDERED_SURROGATE, stats)
                    continue
            else:
                result = split_conversation(
                    kept,
                    counts[at : at + n],
                    max_tokens=opts.max_tokens,
                    turn_overhead=opts.turn_overhead,
                    segment_overhead=self.segment_overhead,
                    oversize=opts.oversize,
                    continuations=opts.continuations,
                )
            t2 = clock()
            stats.seconds["split"] += t2 - t1
            at += n
            if not result.segments:
                reason = result.dropped[0].reason if result.dropped else "no_segment"
                # The whole conversation goes to the rejects, as it arrived: the turns the
                # filters trimmed are in it, so their own lines are taken back.
                _withdraw_parts(item, stats)
                self._reject(item, reason, "no exchange fits in a segment", stats)
                stats.seconds["write"] += clock() - t2
                continue
            for part in result.dropped:
                self._reject_part(
                    item, kept, part.start, part.end, part.reason, f"{part.tokens} tokens", stats
                )
            self._emit(item, result.segments, result.segment_tokens, stats)
            stats.seconds["write"] += clock() - t2
        return at

    def _write_whole(
        self, pending: list[tuple[Item, Conversation]], lines: list[bytes], stats: Stats
    ) -> int:
        """:meth:`_emit` of unsplit conversations straight into the batch's ``lines`` (no dedup
        follows, so no item needs its own); returns how many were written."""
        write = self.writer.write
        encode = orjson.dumps
        written = turns = 0
        for item, kept in pending:
            try:
                record = write(kept)
            except RecordRejected as e:  # the output format cannot hold it (alpaca, say)
                self._reject(item, e.reason, e.message, stats)
                continue
            try:
                lines.append(trimmed(encode(record)))
            except TypeError:  # what orjson refuses: io.dumps says
                lines.append(dumps(record))
            written += 1
            turns += len(kept.turns)
        stats.segments += written
        stats.turns_out += turns
        return written

    def _emit(
        self, item: Item, segments: list[Conversation], tokens: list[int] | None, stats: Stats
    ) -> None:
        write = self.writer.write
        refused: list[tuple[Conversation, RecordRejected]] = []
        split = tokens is not None  # split segments are numbered {id}_{k}, k = 0, 1, 2...
        check = self.render_check
        for k, seg in enumerate(segments):
            if split:
                # ...among the segments written: one the writer refuses leaves no gap.
                seg.id = f"{item.id}_{item.segments}"
            try:
                if check is not None:
                    _render_or_reject(check, seg)
                record = write(seg)
            except RecordRejected as e:  # the output format cannot hold it (alpaca, say)
                refused.append((seg, e))
                continue
            item.lines.append(dumps(record))
            item.turns += len(seg.turns)
            item.segments += 1
            if tokens is not None:
                item.tokens += tokens[k]
        if not item.lines:
            e = refused[-1][1]
            _withdraw_parts(item, stats)  # the whole conversation goes, trimmed turns included
            self._reject(item, e.reason, e.message, stats)
            return
        stats.segments += item.segments
        stats.turns_out += item.turns
        stats.tokens_out += item.tokens
        for seg, e in refused:
            self._reject_part(item, seg, 0, len(seg.turns), e.reason, e.message, stats)

    # ------------------------------------------------------------------ rejects

    def _reject(self, item: Item, reason: str | None, detail: str | None, stats: Stats) -> None:
        reason = reason or "rejected"
        item.rejected = reason
        stats.rejected[reason] += 1
        if self.rejects:
            raw = self._raw(item)
            item.rejects.append(
                reject_line(item.id, reason, detail, item.source, "conversation", None, raw)
            )

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
        if self.rejects:  # the dropped turns, serialised: a fiftieth of a run on ShareGPT
            turns = [turn_dict(t) for t in conv.turns[start:end]]
            item.rejects.append(
                reject_line(item.id, reason, detail, item.source, "turns", turns, None)
            )

    def _raw(self, item: Item) -> bytes:
        """The item's original record as JSON, encoded once per record."""
        if not item.raw:
            cache = item.raw_cache
            if cache is None:
                item.raw = dumps(item.record)
            else:
                key = id(item.record)
                raw = cache.get(key)
                if raw is None:
                    raw = cache[key] = dumps(item.record)
                item.raw = raw
        return item.raw

    def _rejection(self, rej: Rejection, stats: Stats) -> Item:
        """A record (or part of one) the reader refused."""
        scope = "record" if rej.id is None else "part"
        rid = rej.id if rej.id is not None else record_id_of(rej.raw)
        item = Item(rid, rej.source, rejected=rej.reason)
        stats.rejected[rej.reason] += 1
        if self.rejects:
            item.rejects.append(
                reject_line(rid, rej.reason, rej.message, rej.source, scope, None, dumps(rej.raw))
            )
        return item

    def _bad_record(self, rec: BadRecord, stats: Stats) -> Item:
        source = Source(rec.file, rec.index, rec.line)
        reason = "malformed_json"
        detail = str(rec.error)
        if not rec.resumable:
            detail += "; the rest of this input could not be read"
            stats.cut_short.append(rec.file)
        stats.rejected[reason] += 1
        item = Item(None, source, rejected=reason)
        if self.rejects:
            item.rejects.append(
                reject_line(None, reason, detail, source, "record", None, dumps(rec.text))
            )
        return item


def _take_converted(staged: Staged, converted: list[Any], stats: Stats) -> dict[int, Exception]:
    """Put the converter thread's markdown in place; the errors by conversation (its index in
    the stream), each rejecting its conversation as an error in :meth:`Worker._convert` does."""
    failed = dict(staged.failed)
    for (i, turn), markdown in zip(staged.turns, converted, strict=True):
        if markdown is None:  # not page HTML (the thread decided): kept as it is
            continue
        if markdown.__class__ is str:
            turn.content = markdown
            stats.html_turns += 1
        else:
            failed.setdefault(i, markdown)
    return failed


def rendered_budget(options: Options, writer: Format, counter: Any) -> RenderedBudget | None:
    """The template segments are counted through: ``count_template``, else the template of the
    ``text`` writer (what the training text will be), else None (plain counts + overheads)."""
    if options.count_template is not None:
        from .templates import load_template

        template = load_template(options.count_template, variant=options.count_template_variant)
        template.now = options.template_now()
        return RenderedBudget(template, counter)
    if writer.name == "text":
        return RenderedBudget(writer.template, counter)  # type: ignore[attr-defined]
    return None


def _render_or_reject(template: Any, seg: Conversation) -> None:
    from .templates import TemplateRenderError

    try:
        template.render_conversation(seg)
    except TemplateRenderError as e:
        raise RecordRejected("template_error", str(e)) from None


def record_id_of(raw: Any) -> str | None:
    """The id a raw record carries, if any: so that even a refused record is findable by id."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(rid, (str, int)) and not isinstance(rid, bool):
        return str(rid)
    return None


def counted_text(t: Turn) -> str:
    """What a turn's tokens are counted on: its text, and the tool calls it makes (their names
    and arguments are trained on too, whatever the template)."""
    calls = tool_calls(t)
    if calls is None:
        return t.content
    return t.content + "\n" + json_text(calls)


#: The reason for a conversation the tokenizer cannot take (see Worker.finish_many).
UNTOKENIZABLE = "untokenizable_text"


def _counted_texts(prepared: list[Prepared]) -> list[str]:
    return [
        t.content if t.meta is None else counted_text(t)
        for p in prepared
        for _, kept in p.pending
        for t in kept.turns
    ]


_RENDERED_SURROGATE = (
    "a field the chat template renders holds a lone surrogate (read from a JSON \\ud800 "
    "escape), which the tokenizer cannot encode"
)


def _holds_surrogate(conv: Conversation) -> bool:
    """Whether any text of ``conv`` (turns, their metadata, the conversation's: all a template
    may render), or any key, holds a lone surrogate."""
    stack: list[Any] = [conv.meta, *[t.content for t in conv.turns]]
    stack += [t.meta for t in conv.turns if t.meta]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if has_lone_surrogate(x):
                return True
        elif isinstance(x, dict):
            stack += x.keys()
            stack += x.values()
        elif isinstance(x, (list, tuple)):
            stack += x
    return False


def _lone_surrogate_turn(conv: Conversation) -> Turn | None:
    """The first turn whose counted text holds a lone surrogate."""
    for t in conv.turns:
        if has_lone_surrogate(counted_text(t)):
            return t
    return None


def _withdraw_parts(item: Item, stats: Stats) -> None:
    """Take back the part reject lines and counts of an item about to be rejected whole."""
    for reason in item.part_reasons:
        stats.parts_rejected[reason] -= 1
        if not stats.parts_rejected[reason]:
            del stats.parts_rejected[reason]
    item.part_reasons = []
    item.rejects = []


def turn_dict(t: Turn) -> dict[str, Any]:
    """A rejected turn: role and text, and the turn's other keys (tool calls, ids, names), so
    that a dropped exchange can be rebuilt from the rejects. The turn metadata's own keys
    (``from``: the speaker as written; ``content_parts``) keep their names; the turn's own
    fields so named, or named ``role`` or ``content``, are escaped (``convkit:role``)."""
    if not t.meta:
        return {"role": t.role, "content": t.content}
    out: dict[str, Any] = {"role": t.role, "content": t.content}
    for k, v in t.meta.items():
        if k == "content":
            # The null of a turn that only calls tools (its text is ""), or a ShareGPT turn's
            # own "content" beside its "value", carried under that name.
            if v is not None:
                out.setdefault(ESCAPE + k, v)
        elif k in TURN_META_KEYS:
            out[k] = v
        else:
            out[rekey(k, TURN_META_KEYS, _REJECTED_TURN)] = v
    return out


# The names of a rejected turn's own structure.
_REJECTED_TURN = frozenset(("role", "content", *TURN_META_KEYS))


def reject_line(
    rid: str | None,
    reason: str,
    detail: str | None,
    source: Source | None,
    scope: str,
    turns: list[dict[str, Any]] | None,
    raw: bytes | None,
) -> bytes:
    """One rejects record: id, reason, where it came from, what was dropped, and (``raw``, when
    given) the original record.

    The original record is spliced in as already-serialised JSON, so it is encoded once however
    many of its conversations are rejected. Lines for turns dropped from a kept conversation go
    without it: the turns are in the line, the rest is in the output, and file, index and line
    locate the record (copying a whole record for every trimmed greeting made the rejects of a
    ShareGPT dump two thirds the size of its output).
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
    if raw is None:
        return dumps(head)
    return dumps(head)[:-1] + b',"record":' + raw + b"}"


_worker: Worker | None = None
_worker_error: BaseException | None = None


def init_worker(
    options: Options,
    shared_cores: bool = False,
    counter: TokenCounter | None = None,
    local: bool = False,
    rejects: bool = True,
) -> None:
    """Pool initializer: build this process's :class:`Worker` once.

    ``shared_cores``: other worker processes run beside this one, so the tokenizer must not
    start a thread per core of its own (the processes already use every core). ``counter``:
    the token counter this process already loaded, if any. ``rejects``: whether the run
    writes a rejects file (else reject lines are not made, only counted).

    An exception escaping a pool initializer kills the worker, and the pool replaces it forever,
    so the run would hang: in a helper the error is kept and raised by the first batch instead.
    In the main process (``local``) it is raised at once, before any record is read, so that a
    bad option fails even on an empty input.
    """
    global _worker, _worker_error
    if shared_cores:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        # A helper process is convkit's alone: see pipeline.rare_gc_passes.
        gc.set_threshold(100_000, *gc.get_threshold()[1:])
    # A library caller runs convert() many times in one process: a Worker that fails to build
    # must not leave the previous run's Worker (other options) in place.
    _worker, _worker_error = None, None
    try:
        _worker = Worker(options, counter, rejects)
    except BaseException as e:  # re-raised here (local) or by the first batch
        if local:
            raise
        _worker_error = e


def _the_worker() -> Worker:
    if _worker is None:
        raise _worker_error or RuntimeError("init_worker was not called")
    return _worker


def run_batch(batch: list[RawRecord | BadRecord]) -> Done:
    return _the_worker().run(batch)


def prepare_batch(batch: list[RawRecord | BadRecord]) -> Prepared:
    return _the_worker().prepare(batch)


def count_batches(prepared: list[Prepared]) -> list[tuple[Prepared, list[int]]]:
    """Each batch with the token counts of its kept turns, all counted in one call."""
    counts = _the_worker().count_many(prepared)
    out = []
    at = 0
    for p in prepared:
        n = sum(len(kept.turns) for _, kept in p.pending)
        out.append((p, counts[at : at + n]))
        at += n
    return out


def converter_detects(options: Options) -> bool:
    """Whether the converter thread decides which candidate turns are page HTML (``--html
    auto``; with ``always`` every assistant turn of the input is converted)."""
    return options.html == "auto"


def converts_aside(options: Options) -> bool:
    """Whether a one-process run converts HTML on a thread without the GIL
    (:func:`run_converting_aside`): convkit's rules on the compiled engine."""
    if options.html == "never" or options.compat is not None or options.html_engine != "fast":
        return False
    from .markdown import fast

    return fast.AVAILABLE


def run_converting_aside(
    batches: Iterable[list[Any]],
) -> Generator[tuple[list[Any], Done], None, None]:
    """``(batch, done)`` for each batch, in order, as :func:`run_batch` gives them, in this
    process (after :func:`init_worker`), with each batch's HTML converted on a thread that
    never holds the GIL while this one reads the next batch and filters and serialises the
    one before. Ending, by an error or by ``close``, stops the thread."""
    worker = _the_worker()
    with closing(prepared_aside(batches)) as prepared:
        for batch, p in prepared:
            yield batch, worker.finish(p)


def prepared_aside(
    batches: Iterable[list[Any]],
) -> Generator[tuple[list[Any], Prepared], None, None]:
    """``(batch, prepared)`` for each batch, in order, as :func:`prepare_batch` gives them, in
    this process (after :func:`init_worker`), each batch's HTML converted on a thread that never
    holds the GIL (:class:`convkit.markdown._fast.BatchConverter`) while this one reads the next
    batch and filters the one before (and the caller does what it does with it). Ending, by an
    error or by ``close``, stops the thread."""
    from .markdown._fast import BatchConverter

    worker = _the_worker()
    with BatchConverter(
        digests=worker.dedup.uses_digests, detect=converter_detects(worker.options)
    ) as converter:

        def converted() -> tuple[list[Any], float, list[bytes | None] | None]:
            results = converter.collect()
            seconds = converter.last_seconds + converter.last_caller_seconds
            return results, seconds, converter.last_digests

        previous: tuple[list[Any], Staged] | None = None
        for batch in batches:
            try:
                staged = worker.stage(batch, aside=True)
            except BaseException:
                if previous is not None:  # earlier batches come first, as with prepare_batch
                    yield previous[0], worker.filter(previous[1], *converted())
                raise
            if previous is not None:
                results = converted()
            converter.submit(staged.htmls)  # converted while the batch before is filtered
            if previous is not None:
                yield previous[0], worker.filter(previous[1], *results)
            previous = (batch, staged)
        if previous is not None:
            yield previous[0], worker.filter(previous[1], *converted())


def finish_counted(counted: tuple[Prepared, list[int]]) -> Done:
    """A batch from :func:`count_batches`, split and serialised."""
    prepared, counts = counted
    return _the_worker().finish_counted([prepared], counts)[0]
