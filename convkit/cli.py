"""``convkit`` on the command line: a thin shell over :func:`convkit.convert`.

Every flag maps to one :class:`~convkit.options.Options` (or FilterConfig) field. User errors
print one line (``convkit: error: …``) and exit 2 for bad options, 1 for bad input data.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from . import __version__
from .errors import ConfigError, ConvkitError, InputError, OutputError
from .filters import FilterConfig, filter_names
from .formats import default_output_format, describe, format_class, format_names
from .formats.base import Option
from .markdown import DEFAULT_ENGINE, ENGINES
from .options import CONTINUATIONS, HTML_MODES, ON_ERROR, OVERSIZE, Options
from .pipeline import convert

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3  # an output could not be written (disk full, an I/O error)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _format_options() -> dict[str, list[tuple[str, Option]]]:
    """Every format option by its flag name, with the formats that declare it."""
    out: dict[str, list[tuple[str, Option]]] = {}
    for info in describe():
        for o in info.options:
            out.setdefault(o.name.replace("_", "-"), []).append((info.name, o))
    return out


def _split_format_options(
    args: argparse.Namespace, reader: str, writer: str
) -> tuple[dict[str, object], dict[str, object]]:
    """The format flags given, sorted to the reader's and the writer's options."""
    read_opts: dict[str, object] = {}
    write_opts: dict[str, object] = {}
    reader_names = _reader_names(reader)
    writer_name = format_class(writer).name
    for flag, specs in _format_options().items():
        text = getattr(args, f"fmt_{specs[0][1].name}")
        if text is None:
            continue
        used = False
        for fmt, o in specs:
            if o.side == "read" and fmt in reader_names:
                read_opts[o.name] = o.parse(text)
                used = True
            elif o.side == "write" and fmt == writer_name:
                write_opts[o.name] = o.parse(text)
                used = True
        if not used:
            owners = ", ".join(
                sorted({f"--{'from' if o.side == 'read' else 'to'} {fmt}" for fmt, o in specs})
            )
            raise ConfigError(
                f"--{flag} does not apply to --from {reader} --to {writer}; it is for {owners}"
            )
    return read_opts, write_opts


def _reader_names(reader: str) -> set[str]:
    if reader == "auto":
        return set(format_names(readable=True))
    return {format_class(reader).name}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convkit",
        description="Turn raw chat and instruction-tuning datasets into clean, token-limited, "
        "training-ready conversations.",
    )
    parser.add_argument("--version", action="version", version=f"convkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser(
        "convert",
        help="convert, filter and split datasets",
        description="Read INPUT files (JSON arrays or JSON Lines, plain or gzip, zstd, bzip2 "
        "or xz compressed; '-' is stdin), convert ShareGPT page HTML to markdown, filter, optionally split to a token "
        "budget, and write OUTPUT.",
    )
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="input files; '-' reads stdin")
    c.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file (.jsonl, or .json for an array; '-' is stdout)",
    )
    c.add_argument("--rejects", help="write one JSON line per dropped conversation or part here")
    c.add_argument("--stats", help="write counts and timings here (JSON)")

    g = c.add_argument_group("formats")
    g.add_argument(
        "--from",
        dest="input_format",
        default="sharegpt",
        metavar="FORMAT",
        help="input format: "
        + ", ".join([*format_names(readable=True), "auto"])
        + " (default: sharegpt; auto detects each record; see 'convkit formats')",
    )
    g.add_argument(
        "--to",
        dest="output_format",
        default=None,
        metavar="FORMAT",
        help="output format: "
        + ", ".join(format_names(writable=True))
        + " (default: sharegpt with --from sharegpt, else messages, --from auto included: "
        "its records may be of several formats)",
    )
    for flag, specs in _format_options().items():
        kinds = sorted(
            {f"{fmt} ({'reader' if o.side == 'read' else 'writer'})" for fmt, o in specs}
        )
        first = specs[0][1]
        names = [f"--{flag}", *sorted({f"--{a}" for _, o in specs for a in o.flags})]
        choices = f" [{'|'.join(first.choices)}]" if first.choices else ""
        help_text = f"{first.help}{choices}; for {', '.join(kinds)}"
        if first.type is bool:
            # A switch, and --no-FLAG: an optional value would take the input file after it.
            g.add_argument(
                *names, dest=f"fmt_{first.name}", action="store_const", const="true",
                default=None, help=help_text,
            )
            g.add_argument(
                f"--no-{flag}", dest=f"fmt_{first.name}", action="store_const", const="false",
                default=None, help=f"turn --{flag} off",
            )
            continue
        g.add_argument(
            *names, dest=f"fmt_{first.name}", default=None, metavar="VALUE", help=help_text
        )

    g = c.add_argument_group("HTML to markdown")
    g.add_argument(
        "--html",
        default="auto",
        choices=HTML_MODES,
        help="which assistant turns to convert: in ShareGPT input, those that look like page "
        "HTML (auto); all of them, in any format (always); none (never)",
    )
    g.add_argument(
        "--html-engine",
        default=DEFAULT_ENGINE,
        choices=ENGINES,
        help="fast (compiled, default) or markdownify (the reference); same output",
    )
    g.add_argument(
        "--compat",
        choices=["fastchat"],
        help="reproduce FastChat's html_to_markdown output byte for byte",
    )

    g = c.add_argument_group("filters")
    g.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="NAME",
        help=f"switch a filter off (repeatable or comma-separated): {', '.join(filter_names())}",
    )
    g.add_argument(
        "--min-turns",
        type=int,
        default=FilterConfig.min_turns,
        help="fewest turns after the system prompt (default: %(default)s)",
    )
    g.add_argument(
        "--min-chars",
        type=int,
        default=FilterConfig.min_chars,
        help="fewest characters in the turns after the system prompt (default: %(default)s)",
    )
    g.add_argument(
        "--blocked-phrase",
        action="append",
        default=None,
        metavar="PHRASE",
        help="drop conversations containing this phrase as whole words, in any case when it is "
        "all lowercase and as written otherwise (repeatable; replaces the default list: "
        + ", ".join(FilterConfig.blocked_phrases) + ")",
    )
    g.add_argument(
        "--blocked-roles",
        type=_csv,
        default=None,
        metavar="ROLES",
        help="roles whose turns blocked phrases are matched in (default: user,assistant,system)",
    )
    g.add_argument(
        "--blocked-response",
        action="append",
        default=None,
        metavar="PREFIX",
        help="drop conversations with an assistant turn starting so (repeatable; replaces the default)",
    )
    g.add_argument(
        "--repeated-digits",
        type=int,
        default=None,
        metavar="N",
        help="drop conversations with a digit repeated N times in a row (FastChat uses 9)",
    )
    g.add_argument(
        "--restarted-lists",
        action="store_true",
        help="drop conversations with a numbered list restarted at 1 (FastChat's optional rule)",
    )
    g.add_argument(
        "--keep-lang",
        type=_csv,
        default=None,
        metavar="CODES",
        help="keep only these languages (needs convkit[langid])",
    )
    g.add_argument(
        "--skip-lang",
        type=_csv,
        default=None,
        metavar="CODES",
        help="drop these languages (needs convkit[langid])",
    )

    g = c.add_argument_group("token-limited splitting")
    g.add_argument(
        "--tokenizer",
        help="tokenizer.json file (or folder holding one); a hub name works only online",
    )
    g.add_argument(
        "--max-tokens",
        type=int,
        help="split conversations into segments of at most this many tokens",
    )
    g.add_argument(
        "--turn-overhead",
        type=int,
        default=0,
        help="tokens added per turn by the training template (default: 0)",
    )
    g.add_argument(
        "--segment-overhead",
        type=int,
        default=None,
        help="tokens added per segment (default: what the tokenizer adds, e.g. BOS)",
    )
    g.add_argument(
        "--count-template",
        metavar="TEMPLATE",
        help="count each segment exactly as this chat template renders it (a built-in name, "
        ".jinja or tokenizer_config.json); --to text counts through its --template by itself",
    )
    g.add_argument(
        "--count-template-variant",
        metavar="NAME",
        help="which named template of the --count-template tokenizer_config.json "
        "(default: 'default')",
    )
    g.add_argument(
        "--template-time",
        metavar="TIME",
        help="what a chat template's strftime_now formats, ISO 8601 (2024-07-26 or "
        "2024-07-26T09:30:00; default: $SOURCE_DATE_EPOCH, else the time the run starts)",
    )
    g.add_argument(
        "--oversize",
        default="drop",
        choices=OVERSIZE,
        help="an exchange longer than the limit: drop it to the rejects, or keep it as its own flagged segment",
    )
    g.add_argument(
        "--continuations",
        default="drop",
        choices=CONTINUATIONS,
        help="a request to go on (\"continue\") is kept with the exchange it continues when both "
        "fit; when not: drop it to the rejects (no_context), or keep it to open a segment",
    )

    g = c.add_argument_group("running")
    g.add_argument(
        "--on-error",
        default="fail",
        choices=ON_ERROR,
        help="malformed JSON: stop with an error (fail) or reject the record and go on (skip)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help=(
            "processes, this one included (default: all cores; one for inputs under 16 MB, "
            "one when splitting on up to four cores, and one on two cores when the compiled "
            "engine converts HTML, which one process does on a second thread)"
        ),
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar when stderr is a terminal",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="do not print the summary on stderr")

    sub.add_parser("reasons", help="list every reason a conversation or part can be rejected for")
    sub.add_parser(
        "formats", help="list the formats, what --from auto recognises, and their options"
    )
    d = sub.add_parser(
        "detect", help="say which reader --from auto would use for each record, and why"
    )
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="input files; '-' reads stdin")
    d.add_argument(
        "--limit", type=int, default=None, help="look at the first N records of each input"
    )
    d.add_argument(
        "--summary", action="store_true", help="print only the count of records per reader"
    )
    return parser


def _filter_config(args: argparse.Namespace) -> FilterConfig:
    values: dict[str, object] = {
        "disabled": frozenset(n for d in args.disable for n in _csv(d)),
        "min_turns": args.min_turns,
        "min_chars": args.min_chars,
        "repeated_digits": args.repeated_digits,
        "restarted_lists": args.restarted_lists,
        "language_keep": args.keep_lang,
        "language_skip": args.skip_lang,
    }
    if args.blocked_phrase is not None:
        values["blocked_phrases"] = tuple(args.blocked_phrase)
    if args.blocked_roles is not None:
        values["blocked_roles"] = tuple(args.blocked_roles)
    if args.blocked_response is not None:
        values["blocked_responses"] = tuple(args.blocked_response)
    return FilterConfig(**values)  # type: ignore[arg-type]


def _convert(args: argparse.Namespace) -> int:
    output_format = args.output_format or default_output_format(args.input_format, args.output)
    if args.input_format != "auto":
        format_class(args.input_format)  # unknown names fail here, with the list of known ones
    reader_options, writer_options = _split_format_options(args, args.input_format, output_format)
    options = Options(
        input_format=args.input_format,
        output_format=output_format,
        reader_options=reader_options,
        writer_options=writer_options,
        html=args.html,
        html_engine=args.html_engine,
        compat=args.compat,
        filters=_filter_config(args),
        tokenizer=args.tokenizer,
        max_tokens=args.max_tokens,
        turn_overhead=args.turn_overhead,
        segment_overhead=args.segment_overhead,
        count_template=args.count_template,
        count_template_variant=args.count_template_variant,
        template_time=args.template_time,
        oversize=args.oversize,
        continuations=args.continuations,
        on_error=args.on_error,
        workers=args.workers,
    )
    result = convert(
        args.inputs,
        args.output,
        rejects=args.rejects,
        stats=args.stats,
        options=options,
        progress=args.progress,
    )
    if not args.quiet:
        print(result.stats.summary(), file=sys.stderr)
    return EXIT_OK


def _reasons() -> int:
    from .reasons import ALL_REASONS

    width = max(len(r) for r in ALL_REASONS)
    for reason, meaning in ALL_REASONS.items():
        print(f"{reason:<{width}}  {meaning}")
    return EXIT_OK


def _formats() -> int:
    for info in describe():
        does = " and ".join(w for w, ok in (("reads", info.reads), ("writes", info.writes)) if ok)
        aliases = f" (also: {', '.join(info.aliases)})" if info.aliases else ""
        print(f"{info.name}{aliases}: {does}")
        print(f"    {info.description}")
        if info.reads and info.recognises and info.recognises != info.description:
            print(f"    auto-detected by: {info.recognises}")
        for o in info.options:
            side = "reader" if o.side == "read" else "writer"
            default = "" if o.default is None else f" (default: {o.default})"
            print(f"    --{o.name.replace('_', '-')}  {side} option: {o.help}{default}")
    return EXIT_OK


def _detect(args: argparse.Namespace) -> int:
    from collections import Counter
    from itertools import islice

    from .formats import detect_records
    from .io import read_records

    counts: Counter[str] = Counter()
    for path in args.inputs:
        records = read_records(path, on_error="skip")
        if args.limit is not None:
            records = islice(records, args.limit)
        for rec, found in detect_records(records):
            where = f"{rec.file}:{rec.index}"
            if found is None:
                name, why = "-", f"not JSON: {rec.error}"
            else:
                name, why = found.name or "-", found.why
                if found.also:
                    why += f" (also accepted by: {', '.join(found.also)})"
            counts[name] += 1
            if not args.summary:
                print(f"{where}\t{name}\t{why}")
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n}\t{name}", file=sys.stderr if not args.summary else sys.stdout)
    return EXIT_OK


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread: the run unwinds like an interrupt, removing its
    temporary files and stopping its helper processes (the default action kills it as is)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run_command(parser, args)
    except _Terminated:
        print("convkit: terminated; no output was written", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command == "convert":
            return _convert(args)
        if args.command == "reasons":
            return _reasons()
        if args.command == "formats":
            return _formats()
        if args.command == "detect":
            return _detect(args)
    except ConfigError as e:
        print(f"convkit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as e:
        print(f"convkit: error: {e}", file=sys.stderr)
        return EXIT_OUTPUT
    except (InputError, ConvkitError) as e:
        print(f"convkit: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        # The reader of our stdout went away (convkit formats | head): not an error of ours.
        sys.stdout = None  # type: ignore[assignment]  # stop the interpreter flushing it again
        return EXIT_OK
    except KeyboardInterrupt:
        print("convkit: interrupted; no output was written", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks first
    return EXIT_USAGE
