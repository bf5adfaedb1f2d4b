"""CPU benchmark of the offline pipeline at 720p: decode-only, decode+encode-only, full cut-out.

Usage: python bench/cpu_pipeline.py [--seconds 5] [--size 1280x720] [--json bench/cpu_pipeline.json]
Prints a table and writes JSON with the machine's name. The full pipeline uses the bundled model; its row
is the whole job (model loading included), the next one the pipeline run alone.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

import yaml

from baselines import decode_encode, decode_only
from stream import cutout
from stream.demo import make_demo_clip


def timed(fn, *args, **kwargs) -> tuple[int, float]:
    start = time.perf_counter()
    frames = fn(*args, **kwargs)
    return frames, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", default="bench/cpu_pipeline.json")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a cut-out option for the full row, e.g. --set infer_size=384 (YAML value syntax)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_demo_clip(Path(tmp) / "in.mp4", seconds=args.seconds, size=(w, h))
        rows = {
            "decode only": timed(decode_only, clip),
            "decode + encode only": timed(decode_encode, clip, Path(tmp) / "enc.mp4", "libx264",
                                           {"crf": str(args.crf), "preset": args.preset}),
        }
        summary = {}
        start = time.perf_counter()
        options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
        result = cutout(clip, Path(tmp) / "out.mp4", crf=args.crf, preset=args.preset, quiet=True, **options)
        rows["full cut-out (bundled model)"] = (result.frames, time.perf_counter() - start)
        rows["  of which the pipeline run"] = (result.frames, result.seconds)    # without model loading
        summary = {"model": result.model, "options": options, "busy_ms_per_frame": result.busy_ms}
    fps = {name: n / s for name, (n, s) in rows.items()}
    ratio = fps["full cut-out (bundled model)"] / fps["decode + encode only"]
    ratio_run = fps["  of which the pipeline run"] / fps["decode + encode only"]
    print(f"{'stage':32} {'frames':>6} {'seconds':>8} {'fps':>7}")
    for name, (n, s) in rows.items():
        print(f"{name:32} {n:6d} {s:8.2f} {fps[name]:7.1f}")
    print(f"full / (decode + encode) = {ratio:.2f}, pipeline run only {ratio_run:.2f}   "
          f"({summary['model']}, {w}x{h}, {os.cpu_count()} cores)")
    print("busy ms/frame per thread: " + ", ".join(f"{k} {v:.1f}" for k, v in result.busy_ms.items()))
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "size": args.size, "fps": fps, "ratio_full_over_decode_encode": ratio,
        "ratio_pipeline_run_over_decode_encode": ratio_run, **summary,
    }, indent=2))


if __name__ == "__main__":
    main()
