"""One conversion run: read → (workers: normalise, convert, filter, split) → dedup → write.

The main process reads records, hands batches to workers, and receives their results in input
order; it alone decides duplicates (first one wins, in input order) and writes, so the output is
the same bytes whatever the number of workers.
"""

from __future__ import annotations

import gc
import os
import stat
import sys
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .filters import Dedup
from .formats import default_output_format, get_format
from .formats.base import RecordSink
from .io import (
    AtomicFile,
    BadRecord,
    RawRecord,
    RecordWriter,
    display_name,
    dumps,
    iter_inputs,
    json_document,
    loads,
    remove_temporaries,
)
from .options import Options
from .parallel import ordered_map, overlapped_map
from .process import (
    Done,
    Item,
    Prepared,
    converts_aside,
    count_batches,
    finish_counted,
    init_worker,
    prepare_batch,
    prepared_aside,
    reject_line,
    run_batch,
    run_converting_aside,
)
from .stats import Stats

if TYPE_CHECKING:
    from .tokens import TokenCounter


@dataclass(slots=True)
class Result:
    """What :func:`convert` did: the merged stats and the wall time."""

    stats: Stats
    seconds: float
    workers: int

    def to_dict(self, tokenized: bool = False) -> dict[str, Any]:
        out = self.stats.to_dict(wall_seconds=self.seconds, tokenized=tokenized)
        out["workers"] = self.workers
        return out


# Records in the first batch of a one-process run that converts HTML on a thread.
_FIRST_BATCH = 32


def _batches(
    records: Iterable[RawRecord | BadRecord], size: int, first: int | None = None
) -> Iterator[list[Any]]:
    """Batches of ``size`` records; when ``first`` is given, the first of ``min(first, size)``
    and each next one twice the one before, up to ``size``."""
    it = iter(records)
    n = size if first is None else min(first, size)
    while batch := list(islice(it, n)):
        yield batch
        n = min(2 * n, size)


class _Counted:
    """Passes records through, counting them (and ticking the progress bar)."""

    def __init__(self, records: Iterable[Any], bar: Any) -> None:
        self.records = records
        self.bar = bar
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        bar = self.bar
        for rec in self.records:
            self.count += 1
            if bar is not None and not self.count % 256:
                bar.update(256)
            yield rec
        if bar is not None:
            bar.update(self.count % 256)


def _input_bytes(paths: Sequence[str]) -> int | None:
    total = 0
    for p in paths:
        if p == "-" or not os.path.isfile(p):
            return None
        total += os.path.getsize(p)
    return total


def convert(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    rejects: str | os.PathLike[str] | None = None,
    stats: str | os.PathLike[str] | None = None,
    options: Options | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> Result:
    """Convert ``inputs`` into ``output`` (JSONL, or a JSON array for ``.json``; ``-`` = stdout).

    ``rejects`` receives one JSON line per dropped conversation or dropped part, ``stats`` the
    counts and timings. Options are an :class:`Options` or its fields as keyword arguments.
    All files appear under their final names only when the run succeeds.
    """
    if options is None:
        options = Options(**kwargs)
    elif kwargs:
        raise ConfigError("pass either options= or keyword options, not both")
    if options.output_format is None:
        # Here, where the output's name is known (see default_output_format).
        fmt = default_output_format(options.input_format, output)
        options = replace(options, output_format=fmt)
    options.validate()
    if options.uses_template() and options.template_time is None:
        # Read the clock once, here: every worker renders the same date.
        options = replace(options, template_time=options.resolved_template_time())
    paths = _input_paths(inputs)
    _check_outputs(paths, output, rejects, stats)
    workers = options.resolved_workers(_input_bytes(paths))
    if options.batch_size is None:
        # Resolved here, so that the stats file says which size the run used.
        options = replace(options, batch_size=options.resolved_batch_size(workers))
    counter = _check_split(options) if options.max_tokens is not None else None
    with rare_gc_passes():
        return _run(paths, output, rejects, stats, options, workers, progress, counter)


@contextmanager
def rare_gc_passes(threshold: int = 100_000) -> Iterator[None]:
    """Run the cyclic garbage collector every ``threshold`` allocations instead of every 700.

    A run allocates millions of short-lived objects (decoded records, turns, output dicts) that
    reference counting frees; with the default threshold the collector scans the live batch
    over and over, about a tenth of a run's time. Collection stays on (a cycle is still freed
    eventually) and the thresholds are restored afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(threshold, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _run(
    paths: list[str],
    output: str | os.PathLike[str],
    rejects: str | os.PathLike[str] | None,
    stats: str | os.PathLike[str] | None,
    options: Options,
    workers: int,
    progress: bool,
    counter: TokenCounter | None = None,
) -> Result:
    started = time.perf_counter()
    total = Stats()
    dedup = Dedup.from_config(options.filters)
    reader = get_format(options.input_format, **options.reader_options)
    writer = get_format(options.resolved_output_format(), **options.writer_options)
    out: RecordSink | None = None
    rej: RecordWriter | None = None
    staged: AtomicFile | None = None
    results: Generator[tuple[Any, Done], None, None] | None = None
    bar = None
    try:
        # Inside the try: a rejects file that cannot be created must not leave the output's
        # temporary file behind.
        out = writer.open_sink(output)
        write_lines = getattr(out, "write_many", None) or (
            lambda lines: [out.write(loads(line)) for line in lines]
        )
        rej = RecordWriter(rejects) if rejects is not None else None
        keep = rej is not None  # reject lines are made only for a rejects file
        bar = _progress(progress, paths)
        counted = _Counted(iter_inputs(paths, on_error=options.on_error), bar)
        # A stateful reader (flat OASST rows) must see every record, in order, in one stream:
        # it reads here and the workers get conversations; others read inside the workers.
        stream = reader.read_stream(counted) if reader.stateful else counted
        assert options.batch_size is not None  # resolved by convert
        aside = workers == 1 and converts_aside(options)
        # Without splitting, the thread converts each batch while this one filters and writes
        # the one before and reads the next. A first batch as large as the rest would leave
        # the thread idle while it is read, and this thread waiting for the second while it
        # has only the small first one to filter: the batches grow from a small first one.
        first = _FIRST_BATCH if aside and options.max_tokens is None else None
        batches = _batches(stream, options.batch_size, first)
        if aside and options.max_tokens is not None:
            # One process: the tokenizer's threads count the kept text of earlier batches,
            # in few large calls, while this thread filters the next ones (their HTML
            # converted on a thread without the GIL) and then splits and writes the counted
            # ones.
            init_worker(options, False, counter, True, keep)
            results = _finished(_counted_aside(batches))
        elif workers == 1 and options.max_tokens is not None:
            # The same, the HTML converted on this thread.
            results = _finished(
                overlapped_map(
                    prepare_batch,
                    count_batches,
                    batches,
                    initializer=init_worker,
                    initargs=(options, False, counter, True, keep),
                )
            )
        elif aside:
            # One process: the HTML of each batch is converted on a thread without the GIL
            # while this one reads the next batch and filters and writes the one before.
            init_worker(options, False, counter, True, keep)
            results = run_converting_aside(batches)
        else:
            results = ordered_map(
                run_batch,
                batches,
                workers=workers,
                initializer=init_worker,
                initargs=(options, workers > 1, None, False, keep),
                local_initargs=(options, False, counter, True, keep),
            )
        for batch, done in results:
            total.merge(done.stats)
            t0 = time.perf_counter()
            lines, rejected = done.lines, done.rejects
            for item in done.items:  # only with dedup filters (see process.Done)
                if item.rejected is None:
                    _dedup(item, batch, dedup, total, keep)
                if item.lines:
                    total.conversations_out += 1
                    lines += item.lines
                rejected += item.rejects
            write_lines(lines)
            if rej is not None:
                rej.write_many(rejected)
            total.seconds["write"] += time.perf_counter() - t0
        total.records = counted.count
        result = Result(total, time.perf_counter() - started, workers)
        doc = None
        if stats is not None:
            doc = result.to_dict(tokenized=options.max_tokens is not None)
            doc["inputs"] = [display_name(p) for p in paths]
            doc["options"] = options.as_dict()
        if doc is not None:
            # Staged before anything is committed: a stats file that cannot be written leaves
            # no output under its final name either.
            staged = AtomicFile(stats)
            staged.write(json_document(doc))
        # Everything that can fail (a full disk) for all three, then the renames: a run that
        # fails before them leaves none. Only a rename failing, or a signal between two
        # renames, could leave the earlier ones; the output goes last, so not the output.
        written = [f for f in (rej, staged, out) if f is not None]
        for f in written:
            prepare = getattr(f, "prepare", None)
            if prepare is not None:
                prepare()
        for f in written:
            f.commit()
    except BaseException:
        try:
            if results is not None:
                # Now, not when the caller lets go of the error (whose traceback holds the
                # generators): the counting thread or the helper processes end here.
                results.close()
        finally:
            try:
                for pending in (out, rej, staged):
                    if pending is not None:
                        pending.abort()
            finally:
                # Also a file whose writer was interrupted before it held it (see
                # io.new_temporary).
                remove_temporaries()
        raise
    finally:
        if bar is not None:
            bar.close()
    return result


def _counted_aside(
    batches: Iterable[list[Any]],
) -> Generator[tuple[list[Any], tuple[Prepared, list[int]]], None, None]:
    """Each batch prepared by :func:`process.prepared_aside` and counted on the tokenizer's
    thread (:func:`parallel.overlapped_map`), in order; ending closes both threads."""
    with (
        closing(prepared_aside(batches)) as prepared,
        closing(overlapped_map(_second, count_batches, prepared)) as counted,
    ):
        for (batch, _), done in counted:
            yield batch, done


def _second(pair: tuple[Any, Prepared]) -> Prepared:
    return pair[1]


def _finished(
    counted: Generator[tuple[Any, tuple[Prepared, list[int]]], None, None],
) -> Generator[tuple[Any, Done], None, None]:
    """Each counted batch split and serialised on this thread (:func:`process.finish_counted`),
    in order. Ending, by an error or by :meth:`close`, closes ``counted``, which joins its
    counting thread."""
    with closing(counted):
        for batch, done in counted:
            yield batch, finish_counted(done)


def _input_paths(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(inputs, (str, os.PathLike)):
        paths = [os.fspath(inputs)]
    else:
        paths = [os.fspath(p) for p in inputs]
    if not paths:
        raise ConfigError("no input given")
    if paths.count("-") > 1:
        raise ConfigError("standard input ('-') can be read only once")
    for p in paths:
        # A pipe is an input too: <(zcat dump.json.gz) is /dev/fd/63.
        if p != "-" and os.path.isdir(p):
            raise ConfigError(f"input is a directory, not a file: {p}")
        if p != "-" and not os.path.exists(p):
            raise ConfigError(f"input file not found: {p}")
    return paths


_SEPARATORS = tuple({os.sep, os.altsep or os.sep})


def _check_outputs(paths: list[str], *outputs: str | os.PathLike[str] | None) -> None:
    for role, o in zip(("output", "rejects", "stats"), outputs, strict=True):
        # Before any file is created: a run refused here leaves nothing behind.
        # A name ending in a separator means a directory, even one not there yet.
        if o is not None and (os.path.isdir(o) or os.fspath(o).endswith(_SEPARATORS)):
            raise ConfigError(f"{role} is a directory, not a file: {os.fspath(o)}")
    # Standard output is one file however it is named ("-", /dev/stdout, /dev/fd/1, or the
    # file or pipe the shell sent it to); /dev/null, or a terminal under two names (standard
    # output and error), may take several.
    named = [i for i in (_identity(o) for o in outputs if o is not None) if i is not None]
    if len(set(named)) != len(named):
        raise ConfigError("output, rejects and stats must be different files")
    written = {
        os.path.realpath(o)
        for o in outputs
        if o is not None and os.fspath(o) != "-" and not _is_char_device(o)
    }
    # Standard output appended to an input (-o - >> in.jsonl) would feed the run its output.
    stdout = {_identity(o) for o in outputs if o is not None and os.fspath(o) == "-"}
    for p in paths:
        if p != "-" and (os.path.realpath(p) in written or _identity(p) in stdout):
            raise ConfigError(f"output would overwrite the input {p}")


#: Names of standard output and standard error, as a character device is told apart by name.
_STD_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/fd/1": 1, "/proc/self/fd/1": 1,
              "/dev/stderr": 2, "/dev/fd/2": 2, "/proc/self/fd/2": 2}


def _identity(path: str | os.PathLike[str]) -> tuple[Any, ...] | None:
    """What a name writes to: the file's (or pipe's) device and inode when it exists (standard
    output's for "-"), else its real path; for a character device (a terminal, /dev/null)
    standard output or error by name, and None (free to share) for any other."""
    name = os.fspath(path)
    try:
        st = os.fstat(1) if name == "-" else os.stat(name)
    except OSError:
        return ("name", name if name == "-" else os.path.realpath(name))
    if stat.S_ISCHR(st.st_mode):
        fd = _STD_NAMES.get(name)
        return None if fd is None else ("std", fd)
    return ("file", st.st_dev, st.st_ino)


def _is_char_device(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _check_split(options: Options) -> TokenCounter:
    """Fail on a bad tokenizer or impossible limits here, once, not in every worker; the
    counter made for the check is this process's worker's too (loading llama's takes 0.1 s)."""
    from .split import check_split_options
    from .tokens import TokenCounter

    counter = TokenCounter(options.tokenizer)
    overhead = options.segment_overhead
    check_split_options(
        max_tokens=options.max_tokens,
        turn_overhead=options.turn_overhead,
        segment_overhead=counter.special_tokens if overhead is None else overhead,
        oversize=options.oversize,
    )
    return counter


def _dedup(item: Item, batch: list[Any], dedup: Dedup, total: Stats, keep: bool) -> None:
    """Drop ``item`` whole when an earlier kept conversation had its id or content (with a
    reject line when ``keep``)."""
    dup = dedup.check_keys(item.id, item.keys)
    if dup is None:
        return
    _undo_output(total, item)
    total.rejected[dup.reason] += 1
    item.lines = []
    item.rejects = []
    if keep:
        raw = dumps(_record_of(batch, item))
        item.rejects.append(
            reject_line(item.id, dup.reason, dup.detail, item.source, "conversation", None, raw)
        )
    item.rejected = dup.reason


def _record_of(batch: list[Any], item: Item) -> Any:
    """The original record of a result, found in the batch this process sent (raw records, or
    the conversations a stateful reader made of them)."""
    src = item.source
    for x in batch:
        if isinstance(x, RawRecord):
            if src is not None and (x.file, x.index) == (src.file, src.index):
                return x.value
        elif getattr(x, "source", None) == src and getattr(x, "id", None) == item.id:
            return x.raw
    raise AssertionError(f"no record for {item.id!r} in its batch")  # pragma: no cover


def _undo_output(total: Stats, item: Item) -> None:
    """A duplicate found after the worker split it: none of it is written after all, and the
    parts it had dropped are part of the one whole-conversation reject that replaces them."""
    total.segments -= item.segments
    total.turns_out -= item.turns
    total.tokens_out -= item.tokens
    for reason in item.part_reasons:
        total.parts_rejected[reason] -= 1
        if not total.parts_rejected[reason]:
            del total.parts_rejected[reason]


def _progress(enabled: bool, paths: Sequence[str]) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; keep working without it
        return None

    class Bar(tqdm):  # type: ignore[misc]
        # No monitor thread (it checks bars that stall; this one ticks every 256 records): a
        # process with one thread forks its helpers, which start in milliseconds (see
        # parallel.start_method), where a second thread makes them spawn.
        monitor_interval = 0

    return Bar(unit=" rec", desc="convkit", file=sys.stderr, dynamic_ncols=True)
