"""CPU benchmark of the live job: the fake camera (a real portrait, 640x480 @ 30 fps) through the bundled model
and the `virtual_background` preset into pyvirtualcam (a recording test backend: the real pyvirtualcam code
path, no device), with and without face blur and a recording.

Usage: python bench/live_cpu.py [--seconds 10] [--size 640x480] [--fps 30] [--json bench/live_cpu.json]
Prints a table (fps out, counters, capture-to-send latency p50/p95) and writes JSON with the machine's name.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyvirtualcam

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream.jobs.live import live  # noqa: E402
from stream.sources.camera import parse_size  # noqa: E402
from stream.sources.synthetic import SyntheticCamera  # noqa: E402

BACKEND = "p3m-bench"
TARGET_MS = 50.0


class CountingCamera:
    """A pyvirtualcam backend that only counts (and checks) the frames it is sent."""

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.size, self.sent = width * height * 3, 0

    def send(self, frame: np.ndarray) -> None:
        assert frame.size == self.size
        self.sent += 1

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "bench"

    def native_fourcc(self) -> None:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--json", default="bench/live_cpu.json")
    args = ap.parse_args()
    size = parse_size(args.size)
    pyvirtualcam.register_backend(BACKEND, CountingCamera)
    common = dict(model="mediapipe", virtual_cam="auto", virtual_cam_backend=BACKEND, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = {
            "preset (blur:25, 384, guided)": {},
            "+ face blur (fill)": dict(blur_faces=True),
            "+ face blur + recording (x264 ultrafast)": dict(blur_faces=True, output=str(Path(tmp) / "rec.mp4")),
            "+ face blur, queue_size 1": dict(blur_faces=True, queue_size=1),
        }
        rows = {}
        for name, options in scenarios.items():
            camera = SyntheticCamera(size, args.fps, seconds=args.seconds)
            result = live(camera, **common, **options)
            rows[name] = result.stats
            print(f"  {name}: {result.stats.line()}", file=sys.stderr, flush=True)
    model = result.model
    header = (f"{'scenario':42} {'fps out':>7} {'in':>5} {'matted':>6} {'reused':>6} {'dropped':>7} "
              f"{'p50 ms':>7} {'p95 ms':>7}")
    print(header)
    for name, s in rows.items():
        print(f"{name:42} {s.fps:7.1f} {s.frames_in:5d} {s.matted:6d} {s.reused:6d} {s.dropped:7d} "
              f"{s.latency_p50 * 1000:7.1f} {s.latency_p95 * 1000:7.1f}")
    worst = max(s.latency_p95 for s in rows.values()) * 1000
    print(f"camera {args.size} @ {args.fps:g} fps for {args.seconds:g} s, {model}, {os.cpu_count()} cores; "
          f"target p95 <= {TARGET_MS:g} ms: {'met' if worst <= TARGET_MS else 'MISSED'} (worst {worst:.1f} ms)")
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "processor": platform.processor(),
        "cores": os.cpu_count(), "camera": {"size": args.size, "fps": args.fps, "seconds": args.seconds},
        "model": model, "target_p95_ms": TARGET_MS,
        "scenarios": {name: {"fps_out": s.fps, "frames_in": s.frames_in, "matted": s.matted, "reused": s.reused,
                             "dropped": s.dropped, "sent": s.sent, "latency_p50_ms": s.latency_p50 * 1000,
                             "latency_p95_ms": s.latency_p95 * 1000} for name, s in rows.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
