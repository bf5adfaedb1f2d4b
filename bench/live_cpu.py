"""CPU benchmark of the live job: the fake camera (a real portrait, 640x480 @ 30 fps) through the bundled model
and the `virtual_background` preset into pyvirtualcam (a recording test backend: the real pyvirtualcam code
path, no device), with and without face blur and a recording.

Usage: python bench/live_cpu.py [--seconds 10] [--size 640x480] [--fps 30] [--json bench/live_cpu.json]
Prints a table (fps out, counters, capture-to-send latency p50/p95 and of the first frame) and writes JSON with
the machine's name.
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
from stream.pipeline.runner import Pipeline  # noqa: E402
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


def record_latencies(into: list[list[float]]) -> None:
    """Keep each live run's per-frame capture-to-send latencies (the job reports only their p50 and p95)."""
    run = Pipeline.run

    def recording_run(self: Pipeline, *args, **kwargs):
        try:
            return run(self, *args, **kwargs)
        finally:
            into.append(list(self.stats.latencies))

    Pipeline.run = recording_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--json", default="bench/live_cpu.json")
    args = ap.parse_args()
    size = parse_size(args.size)
    pyvirtualcam.register_backend(BACKEND, CountingCamera)
    latencies: list[list[float]] = []
    record_latencies(latencies)
    common = dict(model="mediapipe", virtual_cam="auto", virtual_cam_backend=BACKEND, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = {
            "preset (blur:25, 384, guided)": {},
            "+ face blur (fill)": dict(blur_faces=True),
            "+ face blur + recording (x264 ultrafast)": dict(blur_faces=True, output=str(Path(tmp) / "rec.mp4")),
            "+ face blur, queue_size 1": dict(blur_faces=True, queue_size=1),
        }
        rows, first = {}, {}
        for name, options in scenarios.items():
            camera = SyntheticCamera(size, args.fps, seconds=args.seconds)
            result = live(camera, **common, **options)
            rows[name] = result.stats
            first[name] = latencies[-1][0] if latencies and latencies[-1] else float("nan")
            print(f"  {name}: {result.stats.line()}", file=sys.stderr, flush=True)
    model = result.model
    header = (f"{'scenario':42} {'fps out':>7} {'in':>5} {'matted':>6} {'reused':>6} {'dropped':>7} "
              f"{'p50 ms':>7} {'p95 ms':>7} {'first ms':>8}")
    print(header)
    for name, s in rows.items():
        print(f"{name:42} {s.fps:7.1f} {s.frames_in:5d} {s.matted:6d} {s.reused:6d} {s.dropped:7d} "
              f"{s.latency_p50 * 1000:7.1f} {s.latency_p95 * 1000:7.1f} {first[name] * 1000:8.0f}")
    worst = max(s.latency_p95 for s in rows.values()) * 1000
    print(f"camera {args.size} @ {args.fps:g} fps for {args.seconds:g} s, {model}, {os.cpu_count()} cores; "
          f"target p95 <= {TARGET_MS:g} ms: {'met' if worst <= TARGET_MS else 'MISSED'} (worst {worst:.1f} ms)")
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "processor": platform.processor(),
        "cores": os.cpu_count(), "camera": {"size": args.size, "fps": args.fps, "seconds": args.seconds},
        "model": model, "target_p95_ms": TARGET_MS,
        "scenarios": {name: {"fps_out": s.fps, "frames_in": s.frames_in, "matted": s.matted, "reused": s.reused,
                             "dropped": s.dropped, "sent": s.sent, "latency_p50_ms": s.latency_p50 * 1000,
                             "latency_p95_ms": s.latency_p95 * 1000, "first_frame_ms": first[name] * 1000}
                      for name, s in rows.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
