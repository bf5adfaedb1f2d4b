"""Mutated media through `p3m cutout`: seeded mutations of small generated clips (byte flips, truncation,
header damage), each judged by what a user may expect: exit 0 with a fully decodable output of the reported
frame count, or exit 1 with one clear line (an `error:` line and its hint, no internal error) and no output.

Run as a worker, it judges cases in-process under a memory limit (RLIMIT_AS) and a time limit per case
(SIGALRM), and prints one JSON line per case: `python -m helpers.fuzz --seed 1 --count 100 --folder DIR`.
The suite runs a fixed subset (tests/robustness/test_fuzz.py), `bench/fuzz.py` a longer run.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MUTATIONS = ("flip", "truncate", "header")


@dataclass(frozen=True)
class Verdict:
    case: str
    ok: bool
    exit_code: int
    why: str = ""
    seconds: float = 0.0


def make_clips(folder: Path) -> list[Path]:
    """The clips mutated: H.264 MP4 (index at the end), H.264 MKV, MJPEG AVI with AC3 sound, MP4 with the
    index first."""
    from helpers import robust_media as rm

    folder.mkdir(parents=True, exist_ok=True)
    return [rm.write_clip(folder / "clip.mp4", frames=12), rm.write_clip(folder / "clip.mkv", frames=12),
            rm.write_mjpeg_avi(folder / "clip.avi", frames=12),
            rm.write_clip(folder / "faststart.mp4", frames=12, faststart=True)]


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    """One mutation of `data`: a few flipped bytes anywhere, a cut at a random place, or the first 512 bytes
    (the header) damaged."""
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)):]
    else:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(min(512, len(buf)))] = rng.randrange(256)
    return bytes(buf)


def cases(clips: list[Path], folder: Path, *, seed: int, count: int) -> list[Path]:
    """`count` mutated files written to `folder`, the same for the same seed."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        clip, kind = clips[i % len(clips)], MUTATIONS[(i // len(clips)) % len(MUTATIONS)]
        path = folder / f"{i:04d}_{kind}_{clip.stem}{clip.suffix}"
        path.write_bytes(mutate(clip.read_bytes(), kind, rng))
        made.append(path)
    return made


def judge(path: Path, out_folder: Path) -> Verdict:
    """Run `p3m cutout` on `path` in-process and judge the result."""
    from click.testing import CliRunner

    from helpers import robust_media as rm
    from stream.cli.main import main

    out_folder.mkdir(parents=True, exist_ok=True)
    out = out_folder / f"{path.stem}.mp4"
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["cutout", str(path), "-o", str(out), "-m", "key", "--infer-size", "64",
                                       "--preset", "ultrafast", "-q", "-y"])
    took = time.perf_counter() - start
    lines = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: ")]
    left = [p.name for p in out_folder.iterdir() if p.name.startswith(".")]
    verdict = lambda ok, why="": Verdict(path.name, ok, result.exit_code, why, round(took, 3))   # noqa: E731
    if left:
        return verdict(False, f"left behind: {left}")
    if "Traceback" in result.output or (result.exc_info and result.exc_info[0] is not SystemExit):
        return verdict(False, f"traceback: {result.exc_info[1]!r}")
    if result.exit_code == 0:
        match = re.search(r"(\d+) frames", lines[-1] if lines else "")
        try:
            decoded = len(rm.decode(out))
        except Exception as e:       # any failure to decode is the finding
            return verdict(False, f"exit 0 but the output does not decode: {e}")
        if match is None or int(match.group(1)) != decoded:
            return verdict(False, f"exit 0, summary {lines[-1:]} but {decoded} frames decode")
        out.unlink()
        return verdict(True)
    if out.exists():
        return verdict(False, "failed, and left an output")
    if result.exit_code != 1 or not lines or not lines[0].startswith("error: ") or len(lines) > 2:
        return verdict(False, f"exit {result.exit_code}, stderr {lines}")
    if lines[0].startswith("error: internal error"):
        return verdict(False, lines[0])
    return verdict(True)


def _timeout(signum, frame):
    raise TimeoutError("the case ran past its time limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--memory-mb", type=int, default=3000, help="address-space limit of this worker")
    parser.add_argument("--case-seconds", type=int, default=30)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (args.memory_mb << 20, args.memory_mb << 20))
    from helpers import robust_doubles

    robust_doubles.register()
    clips = make_clips(args.folder / "clips")
    signal.signal(signal.SIGALRM, _timeout)
    for path in cases(clips, args.folder / "cases", seed=args.seed, count=args.count):
        print(json.dumps({"start": path.name}), flush=True)       # a worker that dies names its case
        signal.alarm(args.case_seconds)
        try:
            verdict = judge(path, args.folder / "out")
        except (TimeoutError, MemoryError) as e:
            verdict = Verdict(path.name, False, -1, f"{type(e).__name__}: {e}")
            shutil.rmtree(args.folder / "out", ignore_errors=True)
        finally:
            signal.alarm(0)
        print(json.dumps(asdict(verdict)), flush=True)


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
    main()
