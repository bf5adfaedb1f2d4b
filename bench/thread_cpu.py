"""Where a cut-out's CPU goes: CPU milliseconds per frame of each thread of one 720p cut-out, and of the
decode + encode floor beside it, so that a change's cost shows up in its own thread (wall-clock fps on these
shared cores drift between minutes; CPU time drifts far less).

Usage: python bench/thread_cpu.py [--seconds 10] [--size 1280x720] [--rounds 3] [--set FIELD=VALUE ...]
       [--json bench/thread_cpu.json]
Each round runs decode + encode alone, then the cut-out with the bundled model (model loading included), and
samples every thread's user + system time from /proc (Linux) every 50 ms. Threads are named as Python names
them (`p3m-Compositor`, …); threads a library starts (x264, FFmpeg, OpenCV's pool) keep the process name
(`python`) or their own. Prints the per-round totals and the median of each thread's share. The rounds share
one process: the first carries the one-time imports (pymatting's, on `p3m-foreground-warm-up`), the medians
are the per-frame costs.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml
from baselines import decode_encode

from stream import cutout
from stream.jobs.demo import make_demo_clip

TICK = os.sysconf("SC_CLK_TCK")


class ThreadClock:
    """CPU seconds per thread name of this process while it runs (`with`), from /proc/self/task."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._seen: dict[str, tuple[str, float]] = {}     # native thread id → (name, CPU seconds so far)
        self._names: dict[str, str] = {}
        self._start: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-thread-clock", daemon=True)

    def __enter__(self) -> ThreadClock:
        self._sample()
        self._start = {tid: cpu for tid, (_, cpu) in self._seen.items()}     # threads older than the clock
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    def seconds(self) -> dict[str, float]:
        """CPU seconds by thread name (numbered names of one kind summed), this clock's own thread left out."""
        totals: collections.Counter[str] = collections.Counter()
        for tid, (name, cpu) in self._seen.items():
            if name != "bench-thread-clock":
                totals[name.rstrip("0123456789-_:")] += cpu - self._start.get(tid, 0.0)
        return dict(totals)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self._names[str(thread.native_id)] = thread.name
        for tid in os.listdir("/proc/self/task"):
            try:
                comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:                     # the thread ended between the listing and the read
                continue
            self._seen[tid] = (self._names.get(tid, comm), (int(fields[11]) + int(fields[12])) / TICK)


def cpu_ms_per_frame(fn, *args, **kwargs) -> tuple[float, dict[str, float]]:
    """`fn(*args, **kwargs)` (it returns its frame count): the process's CPU ms per frame, and per thread name."""
    before = os.times()
    with ThreadClock() as clock:
        frames = fn(*args, **kwargs)
    after = os.times()
    total = (after.user - before.user) + (after.system - before.system)
    return 1000 * total / frames, {name: 1000 * s / frames for name, s in clock.seconds().items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default="bench/thread_cpu.json")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a cut-out option, e.g. --set foreground_estimation=false (YAML value syntax)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_demo_clip(Path(tmp) / "in.mp4", seconds=args.seconds, size=(w, h))
        for _ in range(args.rounds):
            floor, _ = cpu_ms_per_frame(decode_encode, clip, Path(tmp) / "enc.mp4", "libx264",
                                        {"crf": "18", "preset": "veryfast"})
            start = time.perf_counter()
            total, threads = cpu_ms_per_frame(lambda: cutout(clip, Path(tmp) / "out.mp4", crf=18, preset="veryfast",
                                                             quiet=True, overwrite=True, **options).frames)
            rounds.append({"decode_encode_ms": floor, "cutout_ms": total, "threads_ms": threads,
                           "cutout_wall_s": time.perf_counter() - start})
            print(f"round {len(rounds)}: decode + encode {floor:.1f} ms/frame, cut-out {total:.1f} ms/frame "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    names = sorted({n for r in rounds for n in r["threads_ms"]},
                   key=lambda n: -statistics.median(r["threads_ms"].get(n, 0.0) for r in rounds))
    print(f"CPU ms per frame, medians of {len(rounds)} rounds ({w}x{h}, {args.seconds:g} s, {os.cpu_count()} cores)")
    print(f"{'decode + encode alone':28} {statistics.median(r['decode_encode_ms'] for r in rounds):6.1f}")
    print(f"{'cut-out, whole job':28} {statistics.median(r['cutout_ms'] for r in rounds):6.1f}")
    for name in names:
        print(f"  {name:26} {statistics.median(r['threads_ms'].get(name, 0.0) for r in rounds):6.2f}")
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "size": args.size, "seconds": args.seconds, "options": options, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
