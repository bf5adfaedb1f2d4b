"""Soak test of the live job (not in CI): a generated 720p camera at 30 fps through `stream.live.live` with the
bundled model for N minutes, into a null virtual camera (a pyvirtualcam backend that counts what it is sent).

Checks, after the warm-up: RSS growth (VmRSS sampled every 10 s) ≤ 50 MB; no frame lost beyond what the live
policy counts (camera frames = sent + dropped; the virtual camera got sent + repeated); capture→send latency
p95 steady (per minute: the worst minute within 1.5× the first + 20 ms).

Usage: python bench/soak_live.py [--minutes 10] [--size 1280x720] [--fps 30] [--json bench/soak_live.json]
Prints a table and writes JSON with the machine's name; exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyvirtualcam

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.frames import Frame  # noqa: E402
from stream.jobs.live import LiveStats, live  # noqa: E402
from stream.sinks import live as outputs  # noqa: E402
from stream.sources.camera import parse_size  # noqa: E402
from stream.sources.synthetic import SyntheticCamera  # noqa: E402

BACKEND = "soak-null"
RSS_LIMIT_MB = 50.0


class NullCamera:
    """A pyvirtualcam backend that only counts the frames it is sent."""

    sent = 0

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        pass

    def send(self, frame: np.ndarray) -> None:
        NullCamera.sent += 1

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "null"

    def native_fourcc(self) -> None:
        return None


class LatencyLog:
    """Capture→send latency of every frame the virtual camera sink writes, by minute of the run."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.by_minute: dict[int, list[float]] = collections.defaultdict(list)

    def install(self) -> None:
        # The measuring hook: wrap the sink's write (the live job builds its sinks itself).
        original = outputs.VirtualCameraSink.write

        def write(sink: outputs.VirtualCameraSink, frame: Frame) -> None:
            original(sink, frame)
            if not frame.extras.get("repeated"):
                now = time.perf_counter()
                self.by_minute[int((now - self.start) // 60)].append(now - frame.captured_at)

        outputs.VirtualCameraSink.write = write

    def p95_ms(self) -> dict[int, float]:
        return {m: float(np.percentile(v, 95) * 1000) for m, v in sorted(self.by_minute.items()) if v}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sample_rss(samples: list[tuple[float, float]], start: float, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        samples.append((time.perf_counter() - start, rss_mb()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--model", default="mediapipe", help="the bundled model by default")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--json", default="bench/soak_live.json")
    args = ap.parse_args()

    pyvirtualcam.register_backend(BACKEND, NullCamera)
    size = parse_size(args.size)
    camera = SyntheticCamera(size, args.fps, seconds=args.minutes * 60)
    start = time.perf_counter()
    latencies = LatencyLog(start)
    latencies.install()
    samples: list[tuple[float, float]] = [(0.0, rss_mb())]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(samples, start, args.sample, stop), daemon=True)
    sampler.start()
    seconds = [0]

    def on_stats(stats: LiveStats) -> None:          # a progress line every 10 s
        if int(stats.seconds) // 10 != seconds[0] // 10:
            seconds[0] = int(stats.seconds)
            print(f"  {stats.seconds:6.0f} s  RSS {rss_mb():7.1f} MB  {stats.line()}", flush=True)

    try:
        result = live(camera, model=args.model, virtual_cam="auto", virtual_cam_backend=BACKEND, quiet=True,
                      on_stats=on_stats)
    finally:
        stop.set()
        sampler.join()
    samples.append((time.perf_counter() - start, rss_mb()))
    s = result.stats

    after = [rss for t, rss in samples if t >= args.warmup] or [samples[-1][1]]
    growth = max(after) - after[0]
    p95 = latencies.p95_ms()
    full_minutes = {m: v for m, v in p95.items() if (m + 1) * 60 <= s.seconds + 1} or p95
    first, worst = next(iter(full_minutes.values())), max(full_minutes.values())
    checks = {
        f"RSS growth after {args.warmup:g} s ≤ {RSS_LIMIT_MB:g} MB": growth <= RSS_LIMIT_MB,
        "camera frames = sent + dropped (nothing lost uncounted)": s.frames_in == s.sent + s.dropped,
        "virtual camera got sent + repeated": NullCamera.sent == s.sent + s.repeated,
        "latency p95 steady (worst minute ≤ 1.5× first + 20 ms)": worst <= 1.5 * first + 20,
    }

    print(f"\nsoak: {args.minutes:g} min of {args.size} @ {args.fps:g} fps, {result.model}, {socket.gethostname()}")
    print(f"{'t (s)':>8} {'RSS (MB)':>10}")
    for t, rss in samples:
        print(f"{t:8.0f} {rss:10.1f}")
    print(f"\n{'minute':>8} {'frames':>8} {'p95 (ms)':>10}")
    for m, v in p95.items():
        print(f"{m:8d} {len(latencies.by_minute[m]):8d} {v:10.1f}")
    print(f"\n{s.line()}")
    print(f"matted {s.matted} (skipped {s.skipped}), virtual camera received {NullCamera.sent}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "minutes": args.minutes, "size": args.size, "fps": args.fps, "model": result.model,
        "rss_mb": samples, "rss_growth_after_warmup_mb": growth, "latency_p95_ms_by_minute": p95,
        "frames_in": s.frames_in, "sent": s.sent, "dropped": s.dropped, "repeated": s.repeated,
        "matted": s.matted, "skipped": s.skipped, "reused": s.reused, "virtual_camera_received": NullCamera.sent,
        "latency_p50_ms": (s.latency_p50 or 0) * 1000, "fps_out": s.fps,
        "checks": checks,
    }, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
