"""Every knob of a conversion run, validated once, picklable for worker processes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ConfigError
from .filters import FilterConfig
from .split import CONTINUATION_POLICIES as CONTINUATIONS
from .split import OVERSIZE_POLICIES as OVERSIZE

HTML_MODES = ("auto", "always", "never")
ON_ERROR = ("fail", "skip")


@dataclass(slots=True)
class Options:
    """Options of :func:`convkit.convert`; each but ``batch_size`` (records per batch, see
    :meth:`resolved_batch_size`) maps one to one to a ``convkit convert`` flag.

    ``html``: ``auto`` cleans conversations read from a scraped chat page (ShareGPT): their
    assistant turns that look like page HTML are converted and the page's "2 / 2" counter is
    taken off their user turns; other formats' text is left as it is. ``always`` converts every
    assistant turn, whatever the format; ``never`` leaves all text alone. ``html_engine``:
    ``fast`` (compiled, the default; the reference runs when the extension is not built) or
    ``markdownify`` (the reference), which give the same output. ``segment_overhead=None`` means the
    tokens the tokenizer's post-processor adds to a sequence (BOS/EOS). ``count_template`` (a
    chat template name or file) makes the splitter count each segment as that template renders
    it, exactly; writing ``text`` through a template counts through that template by itself.
    ``count_template_variant`` picks one of the named templates of a ``tokenizer_config.json``
    (as ``--template-variant`` does for the text writer).
    ``continuations``: when splitting, an exchange whose user turn only asks to go on
    ("continue") stays in the segment of the exchange before it when both fit; when they do
    not, ``drop`` rejects it (``no_context``) and ``keep`` lets it open a segment.
    ``template_time`` (ISO 8601, ``2024-07-26`` or ``2024-07-26T09:30:00``) is what a template's
    ``strftime_now`` formats; :func:`convkit.convert` fills it in when a template is used, from
    ``$SOURCE_DATE_EPOCH`` (UTC) when set, else the time the run starts, so that output does not
    depend on the number of workers or on a run crossing midnight, and the stats file says it.
    """

    input_format: str = "sharegpt"
    output_format: str | None = None  # None: sharegpt for ShareGPT input, else messages
    reader_options: dict[str, Any] = field(default_factory=dict)
    writer_options: dict[str, Any] = field(default_factory=dict)
    html: str = "auto"
    html_engine: str = "fast"
    compat: str | None = None
    filters: FilterConfig = field(default_factory=FilterConfig)
    tokenizer: str | None = None
    max_tokens: int | None = None
    turn_overhead: int = 0
    segment_overhead: int | None = None
    count_template: str | None = None
    count_template_variant: str | None = None
    template_time: str | None = None
    oversize: str = "drop"
    continuations: str = "drop"
    on_error: str = "fail"
    workers: int | None = None
    batch_size: int | None = None  # None: see resolved_batch_size

    def validate(self) -> Options:
        from .formats import format_names, get_format

        if self.count_template_variant is not None and self.count_template is None:
            # Before the writer loads its own template, whose error would say nothing of it.
            if self._writes_text():
                raise ConfigError(
                    "count_template_variant (--count-template-variant) is for count_template; "
                    "the text writer picks a variant of its template with --template-variant"
                )
            raise ConfigError(
                "count_template_variant (--count-template-variant) needs count_template "
                "(--count-template TEMPLATE)"
            )
        get_format(self.input_format, **self.reader_options)
        output_format = self.resolved_output_format()
        fmt = get_format(output_format, **self.writer_options)
        if not fmt.can_write():
            raise ConfigError(
                f"format {output_format!r} cannot be written; writable: "
                + ", ".join(format_names(writable=True))
            )
        _choice("html", self.html, HTML_MODES)
        from .markdown import ENGINES

        _choice("html_engine", self.html_engine, ENGINES)
        _choice("oversize", self.oversize, OVERSIZE)
        _choice("continuations", self.continuations, CONTINUATIONS)
        _choice("on_error", self.on_error, ON_ERROR)
        if self.compat not in (None, "fastchat"):
            raise ConfigError(f"unknown compat mode {self.compat!r}; known: fastchat")
        if self.compat is not None and self.html == "never":
            # FastChat's output is its HTML conversion: with none, the mode would do nothing.
            raise ConfigError(
                "compat (--compat) reproduces FastChat's HTML conversion, which html='never' "
                "(--html never) turns off"
            )
        if self.max_tokens is not None:
            _positive("max_tokens", self.max_tokens)
            if self.tokenizer is None:
                raise ConfigError("max_tokens needs a tokenizer (--tokenizer PATH)")
        if self.count_template is not None and self.max_tokens is None:
            raise ConfigError("count_template needs max_tokens (--max-tokens N)")
        if self.count_template is not None and self._writes_text():
            # Counting through one template and writing through another would count text
            # that is never written.
            raise ConfigError(
                "count_template (--count-template) is for other output formats: the text "
                "writer counts through its own template (--template)"
            )
        self.template_now()
        _non_negative("turn_overhead", self.turn_overhead)
        if self.segment_overhead is not None:
            _non_negative("segment_overhead", self.segment_overhead)
        if (
            self.max_tokens is not None
            and (self.turn_overhead or self.segment_overhead is not None)
            and self.uses_template()
        ):
            # Through a template the rendered segment is counted whole: an overhead added on
            # top would be counted twice, and dropping it silently would hide the mistake.
            raise ConfigError(
                "turn_overhead (--turn-overhead) and segment_overhead (--segment-overhead) do "
                "not apply when segments are counted through a chat template (count_template, "
                "or the text writer): the rendered segment is counted whole"
            )
        if self.workers is not None:
            _positive("workers", self.workers)
        if self.batch_size is not None:
            _positive("batch_size", self.batch_size)
        return self

    def template_now(self) -> datetime | None:
        """``template_time`` as a datetime (None when unset)."""
        if self.template_time is None:
            return None
        try:
            return datetime.fromisoformat(self.template_time)
        except (TypeError, ValueError):
            raise ConfigError(
                "template_time must be an ISO 8601 date or time (2024-07-26, "
                f"2024-07-26T09:30:00), got {self.template_time!r}"
            ) from None

    def uses_template(self) -> bool:
        """Whether the run renders chat templates (the text writer, or count_template)."""
        return self.count_template is not None or self._writes_text()

    def _writes_text(self) -> bool:
        from .formats import format_class

        return format_class(self.resolved_output_format()).name == "text"

    def resolved_output_format(self) -> str:
        """``output_format``, else the default for the input format, as the CLI's ``--to``."""
        if self.output_format is not None:
            return self.output_format
        from .formats import default_output_format

        return default_output_format(self.input_format)

    def resolved_template_time(self) -> str | None:
        """``template_time``, else (when a template is used) ``$SOURCE_DATE_EPOCH`` in UTC, else
        now, to the second."""
        if self.template_time is not None or not self.uses_template():
            return self.template_time
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            try:
                when = datetime.fromtimestamp(int(epoch), tz=timezone.utc).replace(tzinfo=None)
            except (ValueError, OverflowError, OSError):
                raise ConfigError(
                    f"SOURCE_DATE_EPOCH must be a number of seconds, got {epoch!r}"
                ) from None
        else:
            when = datetime.now()
        return when.isoformat(timespec="seconds")

    def resolved_workers(self, input_bytes: int | None) -> int:
        """Processes to use, this one included: the given number, else all cores for inputs
        worth it (one when splitting on up to four cores, and on two cores when HTML would be
        converted on a thread)."""
        if self.workers is not None:
            return self.workers
        cores = os.cpu_count() or 1
        # Records travel between processes, and a spawned helper (see parallel.start_method)
        # takes a quarter of a second to start: below about 16 MB one process is done sooner.
        if input_bytes is not None and input_bytes < 16 << 20:
            return 1
        # Splitting, one process's tokenizer counts on a thread per core while its main
        # thread converts; conversion and filters take about a fifth of the tokenizer's CPU
        # on ShareGPT page HTML, so one converting thread keeps four cores of tokenizer busy.
        # Helpers would count on one thread each and send every batch between processes.
        if self.max_tokens is not None and cores <= 4:
            return 1
        # Without splitting, one process converts the HTML on a second thread, without the GIL
        # (process.run_converting_aside): on two cores that is both, and the records stay put.
        # Two processes cleaned the rendered corpus in 0.27 s against 0.23 s; an input without
        # HTML (its gold markdown, 42 MB) in 0.375 s against 0.393 s.
        if self.max_tokens is None and cores <= 2:
            from .process import converts_aside

            if converts_aside(self):
                return 1
        return cores

    def resolved_batch_size(self, workers: int) -> int:
        """Records per batch: the given number, else 128 in one process and 64 with helpers (a
        one-process run that converts HTML on a thread starts at 32 records and doubles).

        One process pays a little for every batch (about 0.4% of a conversion of small Alpaca
        records at 64). When it converts HTML on a thread, the last batch is filtered and
        written after the thread has ended, and a new process touches fresh memory for the
        largest batch: on the rendered corpus, 128 took 4% less time than 256 (small Alpaca
        records and splitting: the same). With helpers, every batch and its result cross a
        pipe, and the work is shared a batch at a time: smaller batches share it more evenly
        (the last batch of the rendered corpus was a twelfth of the run at 256) and cross in
        fewer pipe-fulls."""
        if self.batch_size is not None:
            return self.batch_size
        return 128 if workers == 1 else 64

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (sets become sorted lists), for the stats file."""
        from dataclasses import asdict

        def plain(v: Any) -> Any:
            if isinstance(v, (set, frozenset)):
                return sorted(v)
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return plain(asdict(self))


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
