"""Benchmark of `p3m batch`: one folder of clips through the local engine with 1 and 2 workers and through a
local Ray of 2 CPUs (one CPU a video: 2 at once), side by side: videos per minute and frames per second over
all workers, whole batches (pool or tasks started, models loaded) timed by wall clock.

Usage: python bench/batch.py [--clips 8] [--seconds 10] [--size 1280x720] [--repeat 3] [--json bench/batch.json]
       python bench/batch.py --gpu --weights p3mnet.pth    (CUDA: 1, 2 and 4 workers sharing one GPU vs one cutout)
Each round runs every row back to back (shared cores drift between minutes, less within a round); the table
shows each round, the medians and each row's median ratio to the first row. Ray rows need `ray` installed
(pip install "p3m-stream[ray]"); without it they are left out, and said so.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from stream import batch, cutout
from stream.jobs.demo import make_demo_clip

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}   # a local Ray on loopback


def rows(args: argparse.Namespace) -> dict[str, dict]:
    """Row name → batch options."""
    if args.gpu:
        gpu = {"weights": args.weights, "device": "cuda"}
        return {f"local, {n} worker{'s' * (n > 1)} on 1 GPU": {**gpu, "workers": n, "gpus_per_video": 1 / n}
                for n in (1, 2, 4)}
    table = {"local, 1 worker": {"workers": 1}, "local, 2 workers": {"workers": 2}}
    if importlib.util.find_spec("ray") is not None:
        table["ray, 2 CPUs (1 a video)"] = {"engine": "ray", "cpus_per_video": 1}
    else:
        print("ray is not installed: the Ray row is left out (pip install 'p3m-stream[ray]')")
    return table


def one_round(clips: Path, tmp: Path, table: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    results = {}
    if args.gpu:                     # the reference: one `cutout` of one clip, the same model
        clip = sorted(clips.iterdir())[0]
        start = time.perf_counter()
        one = cutout(clip, tmp / "one.mp4", weights=args.weights, device="cuda", quiet=True)
        results["one cutout (1 clip)"] = {"fps": one.frames / (time.perf_counter() - start), "videos_per_min": 0.0}
    for name, options in table.items():
        out = tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        report = batch(clips, out, quiet=True, **options)
        if report.failed:
            raise SystemExit(f"{name}: {report.failed[0].input}: {report.failed[0].error}")
        results[name] = {"fps": report.fps, "videos_per_min": report.videos_per_minute, "seconds": report.seconds,
                         "frames": report.frames}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the table's medians are over them")
    ap.add_argument("--gpu", action="store_true", help="CUDA rows: 1, 2, 4 workers sharing one GPU (needs --weights)")
    ap.add_argument("--weights", default=None, help="P3M-Net checkpoint for --gpu")
    ap.add_argument("--json", default="bench/batch.json")
    args = ap.parse_args()
    if args.gpu and not args.weights:
        ap.error("--gpu needs --weights")
    w, h = map(int, args.size.split("x"))
    table = rows(args)
    ray = None
    if any(o.get("engine") == "ray" for o in table.values()):
        os.environ.update(RAY_ENV)
        import ray  # one local Ray for every round: its start-up is not the batch's

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clips = Path(tmp) / "clips"
            clips.mkdir()
            for i in range(args.clips):
                make_demo_clip(clips / f"clip{i}.mp4", seconds=args.seconds, size=(w, h), tone_hz=300 + 40 * i)
            rounds = [one_round(clips, Path(tmp), table, args) for _ in range(args.repeat)]
    finally:
        if ray is not None:
            ray.shutdown()
    names = list(rounds[0])
    first = names[0]
    print(f"{args.clips} clips of {args.seconds:g} s at {w}x{h}, {os.cpu_count()} cores; per round: fps over all "
          "workers (videos/min)")
    print(f"{'row':30} " + " ".join(f"{'round ' + str(k + 1):>16}" for k in range(len(rounds)))
          + f" {'median fps':>11} {'videos/min':>11} {'fps ratio':>10}")
    medians = {}
    for name in names:
        fps = statistics.median(r[name]["fps"] for r in rounds)
        vpm = statistics.median(r[name]["videos_per_min"] for r in rounds)
        ratio = statistics.median(r[name]["fps"] / r[first]["fps"] for r in rounds)
        medians[name] = {"fps": fps, "videos_per_min": vpm, "fps_ratio_to_first": ratio}
        print(f"{name:30} " + " ".join(f"{r[name]['fps']:7.1f} ({r[name]['videos_per_min']:5.1f})" for r in rounds)
              + f" {fps:11.1f} {vpm:11.1f} {ratio:10.2f}")
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "clips": args.clips, "seconds": args.seconds, "size": args.size, "rounds": rounds, "medians": medians,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
