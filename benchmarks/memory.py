"""Peak memory of ``convkit convert`` on a large JSON array (issue 3: a 1 GB array under 1 GB).

    python benchmarks/memory.py [--gb 1.0] [--workers 2] [--keep DIR]

Writes a JSON array of about ``--gb`` GB by repeating the rendered corpus (gold keys removed,
ids made distinct so that dedup keeps the copies), then runs ``convkit convert`` on it as a new
process and samples, every 20 ms, the resident memory (VmRSS) of that process and of all its
descendants (the helper processes). Prints the peak of the sum, the peak of the main process
alone, the input size and the wall time. Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402


def write_array(path: Path, gb: float) -> tuple[int, int]:
    """Repeat the corpus into one JSON array of about ``gb`` GB; (bytes, records)."""
    records = datagen.load_rendered(None)
    if records is None:
        raise SystemExit("the rendered corpus is not there: set CONVKIT_SHARED_DATA")
    target = int(gb * 1e9)
    size = n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        copy = 0
        while size < target:
            for r in records:
                line = json.dumps({**r, "id": f"{r['id']}~{copy}"}, ensure_ascii=False)
                f.write((",\n" if n else "") + line)
                size += len(line.encode()) + 2
                n += 1
            copy += 1
        f.write("\n]\n")
    return path.stat().st_size, n


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gb", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", help="folder for the input (reused when there) and the outputs")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convkit-memory-") as t:
        folder = Path(args.keep or t)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / f"big_{args.gb:g}gb.json"
        if not src.exists():
            print(f"writing {src}", file=sys.stderr)
            write_array(src, args.gb)
        size = src.stat().st_size
        cmd = [
            sys.executable, "-m", "convkit", "convert", str(src),
            "-o", str(folder / "out.jsonl"), "--rejects", str(folder / "rejects.jsonl"),
            "--workers", str(args.workers),
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        peak_sum = peak_main = 0
        while proc.poll() is None:
            pids = _tree(proc.pid)
            rss = [_rss_kb(q) for q in pids]
            peak_sum = max(peak_sum, sum(rss))
            peak_main = max(peak_main, rss[0] if rss else 0)
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"convkit convert failed with exit code {proc.returncode}", file=sys.stderr)
            return 1
        print(
            f"input {size / 1e9:.2f} GB; --workers {args.workers}; wall {wall:.1f} s; "
            f"peak RSS summed over the processes {peak_sum / 1024:.0f} MB "
            f"(main process alone {peak_main / 1024:.0f} MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
