"""Run a CPU benchmark on two checkouts of p3m-stream in alternation, round by round, so that both see the
same machine load (these cores are shared and drift between minutes): a refactor's before and after.

Usage: python bench/compare_trees.py BEFORE_DIR AFTER_DIR [--bench cpu_pipeline|live_cpu] [--rounds 3]
       [--seconds 10] [--json bench/compare_trees.json]
Each tree runs its own copy of the benchmark with its own code (PYTHONPATH=tree). Prints each round and
the medians side by side, and writes JSON with the machine's name.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(tree: Path, bench: str, seconds: float, out: Path) -> dict:
    """One round of `bench` in `tree`, as that tree's code runs it; its JSON report."""
    args = [sys.executable, str(tree / "bench" / f"{bench}.py"), "--seconds", str(seconds), "--json", str(out)]
    if bench == "cpu_pipeline":
        args += ["--repeat", "1"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(args, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def metrics(bench: str, report: dict) -> dict[str, float]:
    """The numbers compared: ratios and fps (cpu_pipeline), fps and latency per scenario (live_cpu)."""
    if bench == "cpu_pipeline":
        r = report["rounds"][0]
        return {"full / (decode + encode)": r["ratio"], "pipeline run / (decode + encode)": r["ratio_run"],
                **{f"fps {name.strip()}": fps for name, fps in r["fps"].items()}}
    out = {}
    for name, s in report["scenarios"].items():
        out.update({f"{name}: fps out": s["fps_out"], f"{name}: p50 ms": s["latency_p50_ms"],
                    f"{name}: p95 ms": s["latency_p95_ms"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--bench", choices=("cpu_pipeline", "live_cpu"), default="cpu_pipeline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", default="bench/compare_trees.json")
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            order = list(trees) if k % 2 == 0 else list(trees)[::-1]      # neither always goes first
            for name in order:
                report = run_once(trees[name], args.bench, args.seconds, Path(tmp) / f"{name}{k}.json")
                rounds[name].append(metrics(args.bench, report))
                print(f"round {k + 1} {name}: " + ", ".join(f"{m} {v:.2f}" for m, v in rounds[name][-1].items()),
                      file=sys.stderr, flush=True)
    medians = {name: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for name, rs in rounds.items()}
    print(f"{args.bench}, {args.rounds} rounds of {args.seconds:g} s, medians ({os.cpu_count()} cores)")
    print(f"{'metric':64} {'before':>9} {'after':>9} {'after/before':>13}")
    for m in medians["before"]:
        b, a = medians["before"][m], medians["after"][m]
        print(f"{m:64} {b:9.2f} {a:9.2f} {a / b if b else float('nan'):13.2f}")
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "bench": args.bench, "seconds": args.seconds, "trees": {k: str(v) for k, v in trees.items()},
        "rounds": rounds, "medians": medians,
    }, indent=2))


if __name__ == "__main__":
    main()
