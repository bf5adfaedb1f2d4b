"""The long fuzz run: seeded mutations of small generated clips (byte flips, truncation, header damage) through
`p3m cutout`, judged as tests/helpers/fuzz.py says (a decodable output of the reported frame count, or one
clear error line and no output), each case under a memory limit (the worker's RLIMIT_AS) and a time limit.

Usage: python bench/fuzz.py [--seeds 1 2 3] [--count 300] [--json bench/fuzz.json]
Prints a table per seed (cases, passed, exit 0, exit 1, slowest case) and every failure; writes JSON with
the machine's name. The suite runs a fixed subset (tests/robustness/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = Path(__file__).resolve().parents[1] / "tests" / "helpers" / "fuzz.py"


def run_seed(seed: int, count: int, memory_mb: int, case_seconds: int) -> dict:
    """One worker over `count` cases of `seed`; a worker that dies is a finding, named by its last case."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(WORKER), "--seed", str(seed), "--count", str(count),
                               "--folder", tmp, "--memory-mb", str(memory_mb), "--case-seconds", str(case_seconds)],
                              capture_output=True, text=True)
        took = time.perf_counter() - start
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    verdicts = [r for r in rows if "start" not in r]
    failures = [v for v in verdicts if not v["ok"]]
    if proc.returncode != 0:
        failures.append({"case": rows[-1].get("start") if rows else None, "ok": False,
                         "why": f"the worker died ({proc.returncode}): {proc.stderr[-500:]}"})
    return {"seed": seed, "cases": len(verdicts), "passed": sum(v["ok"] for v in verdicts),
            "exit_0": sum(v["exit_code"] == 0 for v in verdicts), "exit_1": sum(v["exit_code"] == 1 for v in verdicts),
            "slowest_s": max((v["seconds"] for v in verdicts), default=0.0), "seconds": round(took, 1),
            "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--memory-mb", type=int, default=3000)
    ap.add_argument("--case-seconds", type=int, default=30)
    ap.add_argument("--json", default="bench/fuzz.json")
    args = ap.parse_args()
    results = [run_seed(seed, args.count, args.memory_mb, args.case_seconds) for seed in args.seeds]
    print("| seed | cases | passed | exit 0 | exit 1 | slowest case (s) | run (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['seed']} | {r['cases']} | {r['passed']} | {r['exit_0']} | {r['exit_1']} | {r['slowest_s']:.2f} "
              f"| {r['seconds']} |")
    for r in results:
        for failure in r["failures"]:
            print(f"seed {r['seed']}: {failure}")
    Path(args.json).write_text(json.dumps({"machine": socket.gethostname(), "platform": platform.platform(),
                                           "args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
