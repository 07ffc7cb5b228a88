"""``convkit`` on the command line: a thin shell over :func:`convkit.convert`.

Every flag maps to one :class:`~convkit.options.Options` (or FilterConfig) field. User errors
print one line (``convkit: error: …``) and exit 2 for bad options, 1 for bad input data.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ConfigError, InputError
from .filters import FilterConfig, all_reasons, filter_names
from .formats import format_names
from .options import HTML_MODES, ON_ERROR, OVERSIZE, Options
from .pipeline import convert

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


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
        description="Read INPUT files (JSON arrays or JSON Lines, optionally .gz/.zst; '-' is "
        "stdin), convert ShareGPT page HTML to markdown, filter, optionally split to a token "
        "budget, and write OUTPUT.",
    )
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="input files; '-' reads stdin")
    c.add_argument("-o", "--output", required=True, help="output file (.jsonl, or .json for an array; '-' is stdout)")
    c.add_argument("--rejects", help="write one JSON line per dropped conversation or part here")
    c.add_argument("--stats", help="write counts and timings here (JSON)")

    g = c.add_argument_group("formats")
    readable = format_names(readable=True)
    g.add_argument("--from", dest="input_format", default="sharegpt", choices=[*readable, "auto"],
                   help="input format (default: sharegpt; auto detects per record)")
    g.add_argument("--to", dest="output_format", default="sharegpt", choices=format_names(writable=True),
                   help="output format (default: sharegpt)")

    g = c.add_argument_group("HTML to markdown")
    g.add_argument("--html", default="auto", choices=HTML_MODES,
                   help="which assistant turns to convert: those that look like page HTML (auto), all, or none")
    g.add_argument("--compat", choices=["fastchat"],
                   help="reproduce FastChat's html_to_markdown output byte for byte")

    g = c.add_argument_group("filters")
    g.add_argument("--disable", action="append", default=[], metavar="NAME",
                   help=f"switch a filter off (repeatable or comma-separated): {', '.join(filter_names())}")
    g.add_argument("--min-turns", type=int, default=FilterConfig.min_turns,
                   help="fewest turns after the system prompt (default: %(default)s)")
    g.add_argument("--min-chars", type=int, default=FilterConfig.min_chars,
                   help="fewest characters in the turns after the system prompt (default: %(default)s)")
    g.add_argument("--blocked-phrase", action="append", default=None, metavar="PHRASE",
                   help="drop conversations containing this phrase as whole words (repeatable; "
                   "replaces the default list: " + ", ".join(FilterConfig.blocked_phrases) + ")")
    g.add_argument("--blocked-roles", type=_csv, default=None, metavar="ROLES",
                   help="roles whose turns blocked phrases are matched in (default: user,assistant,system)")
    g.add_argument("--blocked-response", action="append", default=None, metavar="PREFIX",
                   help="drop conversations with an assistant turn starting so (repeatable; replaces the default)")
    g.add_argument("--repeated-digits", type=int, default=None, metavar="N",
                   help="drop conversations with a digit repeated N times in a row (FastChat uses 9)")
    g.add_argument("--restarted-lists", action="store_true",
                   help="drop conversations with a numbered list restarted at 1 (FastChat's optional rule)")
    g.add_argument("--keep-lang", type=_csv, default=None, metavar="CODES",
                   help="keep only these languages (needs convkit[langid])")
    g.add_argument("--skip-lang", type=_csv, default=None, metavar="CODES",
                   help="drop these languages (needs convkit[langid])")

    g = c.add_argument_group("token-limited splitting")
    g.add_argument("--tokenizer", help="tokenizer.json file (or folder holding one); a hub name works only online")
    g.add_argument("--max-tokens", type=int, help="split conversations into segments of at most this many tokens")
    g.add_argument("--turn-overhead", type=int, default=0,
                   help="tokens added per turn by the training template (default: 0)")
    g.add_argument("--segment-overhead", type=int, default=None,
                   help="tokens added per segment (default: what the tokenizer adds, e.g. BOS)")
    g.add_argument("--oversize", default="drop", choices=OVERSIZE,
                   help="an exchange longer than the limit: drop it to the rejects, or keep it as its own flagged segment")

    g = c.add_argument_group("running")
    g.add_argument("--on-error", default="fail", choices=ON_ERROR,
                   help="malformed JSON: stop with an error (fail) or reject the record and go on (skip)")
    g.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: all cores; one for small inputs)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar when stderr is a terminal")
    g.add_argument("-q", "--quiet", action="store_true", help="do not print the summary on stderr")

    sub.add_parser("reasons", help="list every reason a conversation or part can be rejected for")
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
    options = Options(
        input_format=args.input_format,
        output_format=args.output_format,
        html=args.html,
        compat=args.compat,
        filters=_filter_config(args),
        tokenizer=args.tokenizer,
        max_tokens=args.max_tokens,
        turn_overhead=args.turn_overhead,
        segment_overhead=args.segment_overhead,
        oversize=args.oversize,
        on_error=args.on_error,
        workers=args.workers,
    )
    result = convert(
        args.inputs, args.output, rejects=args.rejects, stats=args.stats,
        options=options, progress=args.progress,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            return _convert(args)
        if args.command == "reasons":
            return _reasons()
    except ConfigError as e:
        print(f"convkit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as e:
        print(f"convkit: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("convkit: interrupted; no output was written", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks first
    return EXIT_USAGE
