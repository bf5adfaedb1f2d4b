"""CPU benchmark of the offline pipeline at 720p: decode-only, decode+encode-only, full cut-out.

Usage: python bench/cpu_pipeline.py [--seconds 10] [--size 1280x720] [--repeat 3] [--json bench/cpu_pipeline.json]
Each round runs the three rows back to back and takes its own ratio full / (decode + encode): on shared
cores the speed drifts between minutes, less within a round. Prints every round and the median ratio, and
writes JSON with the machine's name. The full row uses the bundled model and is the whole job (model
loading included); the row under it is the pipeline run alone.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from baselines import decode_encode, decode_only

from stream import cutout
from stream.jobs.demo import make_demo_clip

FULL, RUN = "full cut-out (bundled model)", "  of which the pipeline run"


def timed(fn, *args, **kwargs) -> tuple[int, float]:
    start = time.perf_counter()
    frames = fn(*args, **kwargs)
    return frames, time.perf_counter() - start


def one_round(clip: Path, tmp: Path, crf: int, preset: str, options: dict) -> dict:
    """The rows' fps, the two ratios and the cut-out's busy ms per thread, from one pass of each."""
    rows = {
        "decode only": timed(decode_only, clip),
        "decode + encode only": timed(decode_encode, clip, tmp / "enc.mp4", "libx264",
                                       {"crf": str(crf), "preset": preset}),
    }
    start = time.perf_counter()
    result = cutout(clip, tmp / "out.mp4", crf=crf, preset=preset, quiet=True, overwrite=True, **options)
    rows[FULL] = (result.frames, time.perf_counter() - start)
    rows[RUN] = (result.frames, result.seconds)           # without model loading
    fps = {name: n / s for name, (n, s) in rows.items()}
    return {"fps": fps, "frames": result.frames, "model": result.model, "busy_ms_per_frame": result.busy_ms,
            "ratio": fps[FULL] / fps["decode + encode only"], "ratio_run": fps[RUN] / fps["decode + encode only"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the ratio reported is their median")
    ap.add_argument("--json", default="bench/cpu_pipeline.json")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a cut-out option for the full row, e.g. --set infer_size=384 (YAML value syntax)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_demo_clip(Path(tmp) / "in.mp4", seconds=args.seconds, size=(w, h))
        rounds = [one_round(clip, Path(tmp), args.crf, args.preset, options) for _ in range(args.repeat)]
    names = list(rounds[0]["fps"])
    print(f"fps per round ({rounds[0]['frames']} frames, {w}x{h}, {os.cpu_count()} cores, {rounds[0]['model']})")
    print(f"{'row':34} " + " ".join(f"{k + 1:>7}" for k in range(len(rounds))))
    for name in names:
        print(f"{name:34} " + " ".join(f"{r['fps'][name]:7.1f}" for r in rounds))
    for key, label in (("ratio", "full / (decode + encode)"), ("ratio_run", "  pipeline run / (decode + encode)")):
        print(f"{label:34} " + " ".join(f"{r[key]:7.2f}" for r in rounds))
    ratio, ratio_run = (statistics.median(r[key] for r in rounds) for key in ("ratio", "ratio_run"))
    print(f"median: full / (decode + encode) = {ratio:.2f}, pipeline run only {ratio_run:.2f}")
    last = rounds[-1]["busy_ms_per_frame"]
    print("busy ms/frame per thread (last round): " + ", ".join(f"{k} {v:.1f}" for k, v in last.items()))
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "size": args.size, "options": options, "model": rounds[0]["model"], "rounds": rounds,
        "median_ratio_full_over_decode_encode": ratio, "median_ratio_pipeline_run_over_decode_encode": ratio_run,
    }, indent=2))


if __name__ == "__main__":
    main()
