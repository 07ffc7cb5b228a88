"""convkit against the FastChat-rules pipeline, side by side, in one run on the same input.

    python benchmarks/compare.py [--input FILE | --generated [--n N]] [--limit N]
        [--tokenizer PATH] [--max-tokens 2048] [--repeat 3] [--baseline-repeat R]
        [--workers 1,2] [--engine auto|compat|markdownify] [--markdownify-path DIR]
        [--in-process]

Times, in interleaved rounds on the same file: the FastChat-rules pipeline
(``fastchat_rules.py``: json.load, FastChat's clean with its markdownify conversion, dedup,
FastChat's split loop with one encode call per message, json.dump) and ``convkit.convert``, each
without and with splitting to ``--max-tokens``, with 1 and 2 processes; and the floor of the split
step, tokenising the kept turns alone (with the tokenizer as its file defines it, and with
convkit's counter, which may do the tokenizer's normalizer in Python: ``convkit.normalise``). Prints markdown tables of medians, MB/s (MB = 10^6 bytes of
input JSON), the ratios FastChat-rules time / convkit time, the kept-conversation and segment
counts of both, and where the time goes (convkit's stats ``seconds``: CPU seconds per stage, summed
over workers; the baseline's wall seconds per step).

Each job runs in a new Python process, as a command-line run does, timed from inside after its
imports; so no job inherits the heap, thread pools or tokenizer state of the ones before it
(``--in-process`` runs them all in this process, as the script did until 2026-12-03).

Input: ``--input FILE``; by default the real rendered corpus
(``shared/data/sharegpt_html/rendered/sharegpt_v3_rendered_3000.json``, found through
``$CONVKIT_SHARED_DATA`` or beside the repo) with its gold ``markdown`` keys removed, so that it is
a raw dump; without the corpus (or with ``--generated``), ``--n`` records of the seeded generator.

Token accounting is matched: convkit runs with ``turn_overhead=7, segment_overhead=0``, which is
what FastChat counts per message (``len(tokenizer(value).input_ids) + 6``: a BOS and 6). The
baseline's HTML engine: ``markdownify`` loads markdownify 0.11.6 from ``--markdownify-path DIR``
(made with ``pip install --target DIR markdownify==0.11.6``; also ``$CONVKIT_MARKDOWNIFY_0116``);
``compat`` is convkit's byte-identical copy of it; ``auto`` takes the first when DIR is given.
convkit runs with its defaults otherwise (its fast HTML engine and compiled splitter when built);
``CONVKIT_PUREPYTHON=1 python benchmarks/compare.py`` measures its pure-Python fallbacks.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import pickle
import pkgutil
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import convkit
except ImportError:  # run from a clone without installing: use the clone
    sys.path.insert(0, str(HERE.parent))
    import convkit

import datagen
import fastchat_rules

from convkit import Options, TokenCounter
from convkit.split import BACKEND

# FastChat counts len(tokenizer(value).input_ids) + 6 per message: a BOS and six more.
FASTCHAT_TURN_OVERHEAD = 7


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _prepare_input(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """The file both pipelines read, and a description of it."""
    if args.input:
        path = Path(args.input)
        if args.limit is None:
            return path, f"`{path.name}`"
        with open(path, encoding="utf-8") as f:
            data = json.load(f)[: args.limit]
        out = tmp / "input.json"
        out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return out, f"`{path.name}`, first {len(data)} records"
    corpus = None if args.generated else datagen.rendered_corpus()
    if corpus is not None:
        data = datagen.load_rendered(args.limit)
        assert data is not None
        out = tmp / "rendered.json"
        out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        what = (
            f"`{corpus.name}` (real ShareGPT conversations re-rendered as page HTML; "
            "gold `markdown` keys removed"
        )
        what += f", first {len(data)} records)" if args.limit else ")"
        return out, what
    out = datagen.write_json(tmp / "generated.json", args.n, args.seed)
    return out, f"generated: `datagen.write_json(n={args.n}, seed={args.seed})`"


def _machine() -> str:
    cpu = datagen.cpu_model()
    import bs4
    import tokenizers

    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"convkit {convkit.__version__} (splitter core: {BACKEND}), "
        f"tokenizers {tokenizers.__version__}, "
        f"beautifulsoup4 {bs4.__version__}"
    )


def _convkit_engine() -> str:
    """convkit's HTML engine in this process (workers import the same tree)."""
    from convkit import markdown

    engine = getattr(markdown, "DEFAULT_ENGINE", "markdownify")
    fast = getattr(markdown, "fast", None)
    if engine == "fast" and fast is not None and not fast.AVAILABLE:
        return f"markdownify (reference; the fast engine is off: {fast.UNAVAILABLE_REASON})"
    return "fast (compiled)" if engine == "fast" else "markdownify (reference, pure Python)"


class Runner:
    """Runs named jobs in interleaved rounds and keeps every wall time and detail. Each job
    runs in a new Python process (``isolate``), as a command-line run does, or in this one."""

    def __init__(self, isolate: bool) -> None:
        self.isolate = isolate
        self.times: dict[str, list[float]] = defaultdict(list)
        self.info: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def run(self, name: str, kind: str, *args: Any) -> None:
        done = _in_new_process(kind, args) if self.isolate else _timed(_job(kind, args))
        wall = done["wall"]
        info = done["info"]
        info["cpu"] = done["cpu"]
        self.times[name].append(wall)
        self.info[name].append(info)
        _log(f"  {name}: {wall:.2f} s")

    def median_info(self, name: str, key: str) -> float:
        return statistics.median(i[key] for i in self.info[name])

    def inconsistent(self) -> list[str]:
        """Runs whose kept or segment counts changed between rounds (e.g. the tree being edited
        under the run, so that workers reject everything): their times mean nothing."""
        bad = []
        for name, infos in self.info.items():
            seen = {(i.get("kept"), i.get("segments")) for i in infos if "kept" in i}
            if len(seen) > 1:
                bad.append(f"{name}: {sorted(seen, key=str)}")
        return bad

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])


def _cpu() -> float:
    """CPU seconds used so far by this process (all its threads) and by its ended children
    (worker processes are waited for before a run returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``job`` (set up already): its wall and CPU seconds, and what it returned."""
    gc.collect()  # no job pays for the garbage of the one before
    c0 = _cpu()
    t0 = time.perf_counter()
    info = job()
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": _cpu() - c0, "info": info}


def _in_new_process(kind: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """:func:`_timed` of the job in a new Python process that imports what this one does,
    so that no job runs in a heap, thread pool or tokenizer state another job left behind
    (a tokenizer built anew in a long-lived process and called from a new thread gets slower
    run after run: convkit's split runs took 2.8 s in a process's first round and 3.4-3.8 s in
    the next four). Imports are done before the clock starts, as in this process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--job"],
        input=pickle.dumps((kind, args)),
        capture_output=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
        raise SystemExit(f"the {kind} job failed in its process (exit {proc.returncode})")
    done: dict[str, Any] = json.loads(proc.stdout.decode("utf-8").splitlines()[-1])
    return done


def _job_main() -> int:
    """``compare.py --job``: run the pickled job from standard input, print its timing."""
    kind, args = pickle.loads(sys.stdin.buffer.read())
    _preload(kind, args)
    done = _timed(_job(kind, args))
    sys.stdout.write(json.dumps(done) + "\n")
    return 0


def _preload(kind: str, args: tuple[Any, ...]) -> None:
    """Import, before the clock starts, what a job would import on first use (in one process
    only the first round paid for it): every convkit module, and the baseline's markdownify
    and BeautifulSoup."""
    for module in pkgutil.walk_packages(convkit.__path__, "convkit."):
        if module.name.endswith(".__main__"):  # the command line itself
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an extra that is not installed (pyarrow, zstandard)
            pass
    if kind == "baseline":
        kwargs = args[2]
        fastchat_rules.html_converter(kwargs["engine"], kwargs["markdownify_path"])
        fastchat_rules._parser_errors()


def _job(kind: str, args: tuple[Any, ...]) -> Callable[[], dict[str, Any]]:
    """The job ``kind`` with ``args``, set up (untimed) and ready to run."""
    # Counters of one file share its tokenizer within a process; a command-line run loads
    # it, and so does each of the baseline's runs: so does each job here (--in-process).
    loaded = getattr(convkit.tokens, "_LOADED", None)
    if loaded is not None:
        loaded.clear()
    if kind == "convkit":
        return _convkit_job(*args)
    if kind == "baseline":
        path, tmp, kwargs = args
        return _baseline_job(path, tmp, **kwargs)
    tokenizer, tmp = args
    counter = TokenCounter(str(tokenizer))
    texts = _read_kept(tmp)
    if kind == "floor_batch":  # the tokenizer as its file defines it
        encode_batch = counter.tokenizer.encode_batch_fast
        return lambda: {
            "tokens": sum(len(e) for e in encode_batch(texts, add_special_tokens=False))
        }
    if kind == "floor_count":  # convkit's counter (normalizer in Python, word table, when exact)
        return lambda: {"tokens": sum(counter.count(texts))}
    assert kind == "floor_loop", kind
    encode = counter.tokenizer.encode
    return lambda: {"tokens": sum(len(encode(t).ids) for t in texts)}


def _convkit_job(path: Path, tmp: Path, options: Options) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        result = convkit.convert(
            path, tmp / "convkit.jsonl", stats=tmp / "convkit_stats.json", options=options
        )
        s = result.stats
        return {
            "kept": s.conversations_out,
            "segments": s.segments,
            "seconds": dict(s.seconds),
            "rejected": dict(s.rejected),
        }

    return job


def _baseline_job(path: Path, tmp: Path, **kwargs: Any) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        r = fastchat_rules.run(path, tmp / "fastchat.json", **kwargs)
        return {
            "kept": r.kept if r.split_kept is None else r.split_kept,
            "segments": r.segments,
            "seconds": r.seconds,
            "dropped": dict(r.dropped),
        }

    return job


def _kept_texts(tmp: Path, options: Options, path: Path) -> list[str]:
    """The turns convkit keeps (no split): the text the split step must tokenise."""
    convkit.convert(path, tmp / "kept.jsonl", options=options)
    return _read_kept(tmp)


def _read_kept(tmp: Path) -> list[str]:
    texts = []
    with open(tmp / "kept.jsonl", encoding="utf-8") as f:
        for line in f:
            texts.extend(t["value"] for t in json.loads(line)["conversations"])
    return texts


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--input", help="a ShareGPT JSON array (default: the rendered corpus, else generated)"
    )
    p.add_argument(
        "--generated",
        action="store_true",
        help="use the seeded generator even when the corpus is present",
    )
    p.add_argument("--n", type=int, default=3000, help="records to generate (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--limit", type=int, help="use only the first N records of the input")
    p.add_argument(
        "--tokenizer", help="tokenizer.json (default: shared llama, else examples/tokenizer.json)"
    )
    p.add_argument(
        "--max-tokens", type=int, default=2048, help="split limit (default 2048, FastChat's)"
    )
    p.add_argument("--repeat", type=int, default=3, help="rounds of every convkit run (default 3)")
    p.add_argument(
        "--baseline-repeat", type=int, help="rounds of the slow baseline runs (default: --repeat)"
    )
    p.add_argument(
        "--workers", default="1,2", help="process counts to run, comma-separated (default 1,2)"
    )
    p.add_argument(
        "--engine",
        choices=("auto", "compat", "markdownify"),
        default="auto",
        help="the baseline's markdownify (see the module docstring)",
    )
    p.add_argument(
        "--markdownify-path",
        default=os.environ.get("CONVKIT_MARKDOWNIFY_0116"),
        help="folder holding markdownify 0.11.6 (pip install --target DIR markdownify==0.11.6)",
    )
    p.add_argument("--keep", help="keep inputs, outputs and stats in this folder")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every job in this process (default: each in a new one, imports untimed)",
    )
    args = p.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    base_repeat = args.baseline_repeat or args.repeat
    engine = args.engine
    if engine == "auto":
        engine = "markdownify" if args.markdownify_path else "compat"
    md_version = fastchat_rules.markdownify_version(
        args.markdownify_path if engine == "markdownify" else None
    )
    if engine == "markdownify" and md_version != "0.11.6":
        _log(f"warning: markdownify {md_version} is not FastChat's 0.11.6; its output differs")
    engine_desc = (
        f"markdownify {md_version} (FastChat's `html_to_markdown` around it)"
        if engine == "markdownify"
        else 'convkit\'s `compat="fastchat"` '
        "(byte-identical to FastChat's markdownify 0.11.6 output)"
    )
    tokenizer = Path(args.tokenizer) if args.tokenizer else datagen.default_tokenizer()

    with tempfile.TemporaryDirectory(prefix="convkit-compare-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        path, what = _prepare_input(args, tmp)
        size = path.stat().st_size
        mb = size / 1e6
        with open(path, encoding="utf-8") as f:
            n_records = len(json.load(f))
        _log(f"input {path} ({mb:.1f} MB, {n_records} records); tokenizer {tokenizer}")

        clean_opts = {w: Options(workers=w) for w in workers}
        # convkit with its pure-Python reference HTML engine, where the option exists.
        ref_opts = (
            {w: Options(workers=w, html_engine="markdownify") for w in workers}
            if hasattr(Options(), "html_engine")
            else {}
        )
        split_opts = {
            w: Options(
                workers=w,
                tokenizer=str(tokenizer),
                max_tokens=args.max_tokens,
                turn_overhead=FASTCHAT_TURN_OVERHEAD,
                segment_overhead=0,
            )
            for w in workers
        }
        base = {"engine": engine, "markdownify_path": args.markdownify_path}
        texts = _kept_texts(tmp, clean_opts[workers[0]], path)
        n_chars = sum(len(t) for t in texts)

        r = Runner(isolate=not args.in_process)
        for rnd in range(max(args.repeat, base_repeat)):
            _log(f"round {rnd + 1}")
            for w in workers:
                if rnd < base_repeat:
                    r.run(f"fc_clean_{w}", "baseline", path, tmp, {"workers": w, **base})
                if rnd < args.repeat:
                    r.run(f"ck_clean_{w}", "convkit", path, tmp, clean_opts[w])
                if rnd < args.repeat and w in ref_opts:
                    r.run(f"ck_ref_{w}", "convkit", path, tmp, ref_opts[w])
            for w in workers:
                if rnd < base_repeat:
                    split_base = {"tokenizer": tokenizer, "max_length": args.max_tokens, **base}
                    r.run(f"fc_split_{w}", "baseline", path, tmp, {"workers": w, **split_base})
                if rnd < args.repeat:
                    r.run(f"ck_split_{w}", "convkit", path, tmp, split_opts[w])
            if rnd < args.repeat:
                r.run("floor_batch", "floor_batch", tokenizer, tmp)
                r.run("floor_count", "floor_count", tokenizer, tmp)
                r.run("floor_loop", "floor_loop", tokenizer, tmp)

    _print_report(
        r,
        args,
        workers,
        what,
        mb,
        n_records,
        tokenizer,
        engine_desc,
        len(texts),
        n_chars,
        base_repeat,
    )
    return 0


def _targets(r: Runner, add: Callable[[str], None]) -> None:
    """Issue 3's speed targets against this run's medians (one process), with what bounds them
    on this machine: the time the HTML conversion alone takes, and the CPU the tokenizer alone
    needs, measured in the same run."""
    cores = os.cpu_count() or 1
    fc_clean, ck_clean = r.median("fc_clean_1"), r.median("ck_clean_1")
    fc_split, ck_split = r.median("fc_split_1"), r.median("ck_split_1")
    floor = r.median("floor_batch")
    # What convkit's split must at least do: count the kept turns with its counter.
    count, count_cpu = r.median("floor_count"), r.median_info("floor_count", "cpu")

    def stage(key: str, name: str) -> float:
        return statistics.median(i["seconds"].get(name, 0.0) for i in r.info[key])

    html = stage("ck_clean_1", "convert")
    # The one-process clean converts HTML on a second thread: the rest is the main thread's.
    main = sum(stage("ck_clean_1", s) for s in ("read", "filter", "write"))
    fc_clean_all = min(r.median(k) for k in ("fc_clean_1", "fc_clean_2") if k in r.times)
    # Everything but tokenising, as the run without splitting clocks it (no tokenizer thread
    # competing for the cores), plus the split step itself.
    rest = sum(stage("ck_clean_1", s) for s in ("read", "convert", "filter", "write"))
    rest += stage("ck_split_1", "split")
    need_clean, need_split = fc_clean / 20, fc_split / 5
    left = cores * need_split - count_cpu
    best = max(count, (count_cpu + rest) / cores)

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    add("Issue 3's targets, one process, from the medians above:")
    add("")
    add("| target | needs | this run | | what bounds it on this machine |")
    add("|---|---:|---:|---|---|")
    add(
        f"| clean ≥ 20× the FastChat rules | ≤ {need_clean:.2f} s | {ck_clean:.2f} s "
        f"({fc_clean / ck_clean:.1f}×) | {met(ck_clean <= need_clean)} "
        f"| the main thread, which holds the GIL: its stages (records read, filters, writing) "
        f"took {main:.2f} s, the array's parsing, collecting the markdown and dedup most of the "
        f"rest; the HTML conversion, {html:.2f} s, ran beside it on a second thread |"
    )
    if fc_clean_all < fc_clean:
        add(
            f"| the same, against the FastChat rules' faster run ({fc_clean_all:.2f} s, "
            f"{cores} processes; convkit's one process uses {cores} cores too) "
            f"| ≤ {fc_clean_all / 20:.2f} s | {ck_clean:.2f} s ({fc_clean_all / ck_clean:.1f}×) "
            f"| {met(ck_clean <= fc_clean_all / 20)} | as above |"
        )
    add(
        f"| clean + split ≥ 5× the FastChat rules | ≤ {need_split:.2f} s | {ck_split:.2f} s "
        f"({fc_split / ck_split:.1f}×) | {met(ck_split <= need_split)} "
        f"| counting the kept turns alone (convkit's counter) took {count:.2f} s and "
        f"{count_cpu:.2f} s of CPU ({count_cpu / count:.1f} of the {cores} cores); at 5× the "
        f"{cores} cores have "
        f"{max(left, 0.0):.2f} s of CPU left for everything else, which took {rest:.2f} s "
        f"(reading, HTML, filters, writing, splitting): no pipeline doing that work on "
        f"these cores can take less than about {best:.2f} s ({fc_split / best:.1f}×) |"
    )
    add(
        f"| clean + split within 1.5× of the floor | ≤ {1.5 * floor:.2f} s | {ck_split:.2f} s "
        f"({ck_split / floor:.2f}×) | {met(ck_split <= 1.5 * floor)} | the floor: tokenising "
        "the kept turns once, in one batched call, with the tokenizer as its file defines it "
        f"(convkit's counter: {count:.2f} s, {ck_split / count:.2f}×) |"
    )
    add("")


def _print_report(
    r: Runner,
    args: argparse.Namespace,
    workers: list[int],
    what: str,
    mb: float,
    n_records: int,
    tokenizer: Path,
    engine_desc: str,
    n_texts: int,
    n_chars: int,
    base_repeat: int,
) -> None:
    out = []
    add = out.append
    add(f"**Input**: {what}: {n_records} records, {mb:.1f} MB.  ")
    add(f"**Machine**: {_machine()}.  ")
    add(f"**HTML engines**: convkit {_convkit_engine()}; FastChat rules: {engine_desc}.  ")
    add(
        f"**Tokenizer**: `{tokenizer.parent.name}/{tokenizer.name}`; "
        f"split limit {args.max_tokens}, "
        "both counting a BOS + 6 per message "
        f"(convkit: `turn_overhead={FASTCHAT_TURN_OVERHEAD}, segment_overhead=0`).  "
    )
    add(
        f"**Rounds**: medians of {args.repeat} (FastChat rules: {base_repeat}), "
        "wall time of the whole call "
        "(reading, converting, filtering, splitting, writing; worker start-up included), "
        + (
            "all in one process."
            if args.in_process
            else "each in a new Python process, as a command-line run is (imports untimed)."
        )
    )
    add("")
    add(
        "| pipeline | processes | median s | min s | MB/s | FastChat rules / convkit "
        "| kept conversations | segments |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|")

    def row(label: str, key: str, w: int | str, ratio: float | None) -> None:
        if key not in r.times:
            return
        med = r.median(key)
        info = r.info[key][-1]
        segs = info.get("segments") if key.startswith(("fc_split", "ck_split")) else None
        ratio_s = f"**{ratio:.1f}×**" if ratio is not None else ""
        add(
            f"| {label} | {w} | {med:.2f} | {min(r.times[key]):.2f} | {mb / med:.1f} | {ratio_s} "
            f"| {info.get('kept', '–')} | "
            f"{'–' if segs is None else segs} |"
        )

    for step, fc, ck, ck_label in (
        ("clean", "fc_clean", "ck_clean", "convkit `convert`"),
        ("clean", "fc_clean", "ck_ref", "convkit `convert --html-engine markdownify`"),
        ("split", "fc_split", "ck_split", f"convkit `convert --max-tokens {args.max_tokens}`"),
    ):
        fc_label = (
            "FastChat rules: clean"
            if step == "clean"
            else f"FastChat rules: clean + split {args.max_tokens}"
        )
        if ck != "ck_ref":
            for w in workers:
                row(fc_label, f"{fc}_{w}", w, None)
        for w in workers:
            fkey, ckey = f"{fc}_{w}", f"{ck}_{w}"
            ratio = r.median(fkey) / r.median(ckey) if fkey in r.times and ckey in r.times else None
            # One process converts the HTML on a second thread (compiled engine only).
            aside = w == 1 and ck != "ck_ref" and _convkit_engine().startswith("fast (compiled")
            row(ck_label, ckey, "1 (HTML on a 2nd thread)" if aside else w, ratio)
    fb, fc, fl = r.median("floor_batch"), r.median("floor_count"), r.median("floor_loop")
    add(
        f"| floor: tokenise the {n_texts} kept turns, one batched `encode_batch_fast` "
        f"| 1 ({os.cpu_count()} threads) "
        f"| {fb:.2f} | {min(r.times['floor_batch']):.2f} | – | | | |"
    )
    add(
        "| count the same turns with convkit's `TokenCounter.count` (one batched call, "
        "the normalizer done in Python, each distinct word tokenised once) "
        f"| 1 ({os.cpu_count()} threads) "
        f"| {fc:.2f} | {min(r.times['floor_count']):.2f} | – | | | |"
    )
    add(
        "| tokenise the same turns, one `encode` per turn (FastChat's way) "
        f"| 1 | {fl:.2f} | {min(r.times['floor_loop']):.2f} | – | | | |"
    )
    add("")
    add(
        f"Ratios are FastChat-rules median / convkit median at the same process count. "
        f"The kept turns hold {n_chars / 1e6:.1f} M characters; their tokens: "
        f"{r.info['floor_batch'][-1]['tokens']:,} (without special tokens)."
    )
    add("")
    if "ck_clean_1" in r.times and "ck_split_1" in r.times:
        _targets(r, add)

    # Where the time goes.
    stages = ("read", "convert", "filter", "tokenize", "split", "write")
    add(
        "Where convkit's time goes (stats `seconds`: CPU seconds per stage summed over workers, "
        "medians; "
        "`wall` is the call's wall time):"
    )
    add("")
    add("| convkit run | processes | " + " | ".join(stages) + " | wall |")
    add("|---|---:|" + "---:|" * (len(stages) + 1))
    for ck, label in (
        ("ck_clean", "no split"),
        ("ck_ref", "no split, markdownify engine"),
        ("ck_split", f"split {args.max_tokens}"),
    ):
        for w in workers:
            key = f"{ck}_{w}"
            if key not in r.times:
                continue
            cells = [
                statistics.median(i["seconds"].get(s, 0.0) for i in r.info[key]) for s in stages
            ]
            add(
                f"| {label} | {w} | "
                + " | ".join(f"{c:.2f}" for c in cells)
                + f" | {r.median(key):.2f} |"
            )
    add("")
    add("Where the FastChat-rules baseline's time goes (wall seconds per step, medians):")
    add("")
    steps = ("load", "clean", "split", "write")
    add("| FastChat-rules run | processes | " + " | ".join(steps) + " | wall |")
    add("|---|---:|" + "---:|" * (len(steps) + 1))
    for fc, label in (("fc_clean", "clean"), ("fc_split", f"clean + split {args.max_tokens}")):
        for w in workers:
            key = f"{fc}_{w}"
            if key not in r.times:
                continue
            cells = [
                statistics.median(i["seconds"][s] for i in r.info[key])
                if s in r.info[key][0]["seconds"]
                else None
                for s in steps
            ]
            add(
                f"| {label} | {w} | "
                + " | ".join(_fmt(c) for c in cells)
                + f" | {r.median(key):.2f} |"
            )
    dropped = r.info[next(k for k in r.info if k.startswith("fc_clean"))][-1]["dropped"]
    add("")
    add(
        "FastChat rules dropped: "
        + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "nothing")
        + ".  "
    )
    rejected = r.info[next(k for k in r.info if k.startswith("ck_clean"))][-1]["rejected"]
    split_rejected = r.info[next(k for k in r.info if k.startswith("ck_split"))][-1]["rejected"]
    add(
        "convkit rejected: "
        + (", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "nothing")
        + " (and trimmed turns from kept conversations; see its stats file).  "
    )
    add(
        f"When splitting to {args.max_tokens}, convkit rejects: "
        + (", ".join(f"{k} {v}" for k, v in sorted(split_rejected.items())) or "nothing")
        + " (`oversize_exchange`: no exchange of the conversation fits; FastChat writes such "
        "exchanges as segments over the limit). The kept conversations of the split rows are "
        "those with at least one segment."
    )
    bad = r.inconsistent()
    if bad:
        add("")
        add(
            "**Warning: counts changed between rounds, these timings are not valid**: "
            + "; ".join(bad)
        )
        _log("warning: counts changed between rounds: " + "; ".join(bad))
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(_job_main() if sys.argv[1:] == ["--job"] else main())
