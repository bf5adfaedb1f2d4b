"""GPU benchmark and parity check: P3M-Net forward (eager vs the fast path), the 1080p30 cut-out, live latency.

Usage (from the repository root):
    python bench/gpu_bench.py                 # on a CUDA machine: bench/gpu_check.sh runs this
    python bench/gpu_bench.py --cpu-smoke     # tiny sizes on the CPU in seconds: proves the script works

Sections: 1. parity of the fast path with the float32 reference (../shared/p3m/parity, or --shared DIR);
2. forward time at 512×288, 768×432, 1024×576 (eager float32 vs fast path batch 1 and 8); 3. the offline
pipeline on a generated 1080p30 clip (decode only, decode + encode only, full cut-out with random-weight
P3M-Net); 4. live latency p50/p95 from a paced synthetic 1080p30 camera. Prints tables; writes JSON (with
the machine's name) to --json, or to $OUT/gpu_bench.json when OUT is set. Installs nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import importlib.util
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):        # the package, and this script's neighbours when imported
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from baselines import decode_encode, decode_only  # noqa: E402  (bench/ is this script's folder)

from model import P3MNet  # noqa: E402
from model.p3mnet.checkpoint import load_official, save_official  # noqa: E402
from model.runtime.fast_p3mnet import FastP3MNet  # noqa: E402
from model.runtime.precision import PRECISIONS  # noqa: E402
from stream import hwcodecs  # noqa: E402
from stream.frames import Frame  # noqa: E402
from stream.protocols import Sink  # noqa: E402

TOLERANCE = 1 / 255
log = logging.getLogger("gpu_bench")


# --- helpers ------------------------------------------------------------------------------------------------

class Deadline:
    """Sections after `seconds` are skipped (and say so), so the whole run fits its time slot."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    @property
    def passed(self) -> bool:
        return time.perf_counter() > self.end


def time_ms(fn: Callable[[], Any], device: torch.device, reps: int, warmup: int = 3) -> float:
    """Median milliseconds of `fn()` over `reps` runs (CUDA events on the GPU, after `warmup` runs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_parity(shared: Path, seed: int) -> tuple[P3MNet, dict[str, np.ndarray]]:
    """The official-format random net of `seed` (make_checkpoint.py) and its reference vectors."""
    parity = shared / "p3m" / "parity"
    spec = importlib.util.spec_from_file_location("p3m_make_checkpoint", parity / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = P3MNet().eval()
    load_official(net, module.make_state_dict(seed=seed), source=f"seed {seed}")
    return net, dict(np.load(parity / f"vectors_seed{seed}.npz"))


def compare(alpha: np.ndarray, ref: dict[str, np.ndarray]) -> dict[str, Any]:
    """Fused alpha vs the reference: max difference everywhere and off near-ties, pixels over 1/255."""
    diff = np.abs(alpha.astype(np.float64) - ref["fused_alpha"])
    top2 = np.sort(ref["global_logits"], axis=1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0] < 1e-4)[:, None]
    return {"max": float(diff.max()), "max_off_ties": float(diff[~near_tie].max()),
            "over_1_255": int((diff > TOLERANCE).sum()), "pixels": int(diff.size),
            "pass": bool(diff.max() <= TOLERANCE)}


class NullSink(Sink):
    """Takes frames and keeps nothing (live latency without an encoder in the way)."""

    path = "null"

    def write(self, frame: Frame) -> None:
        self.frames_written += 1


# --- 1. parity ------------------------------------------------------------------------------------------------

def run_parity(shared: Path, device: torch.device, seeds: list[int], precisions: list[str]) -> dict[str, Any]:
    """Each precision's graph path (and the plain eager net in PyTorch's default float32) vs the reference."""
    results: dict[str, Any] = {}
    for seed in seeds:
        net, ref = load_parity(shared, seed)
        x = torch.from_numpy(ref["input"]).to(device)
        if device.type == "cuda":
            plain = copy.deepcopy(net).to(device)
            with torch.inference_mode():      # PyTorch defaults: cuDNN float32 convolutions use TF32
                results[f"seed{seed} eager fp32 (PyTorch defaults)"] = compare(
                    plain(x).fused_alpha.float().cpu().numpy(), ref)
            del plain
        for precision in precisions:
            runner = FastP3MNet(net, device, precision=precision)
            graph = runner(x).float().cpu().numpy()
            row = compare(graph, ref)
            row["graph_vs_eager_max"] = float(np.abs(graph - runner.forward(x).float().cpu().numpy()).max())
            results[f"seed{seed} fast {precision}"] = row
            runner.reset()
            del runner
            free_memory()
    return results


# --- 2. forward time ------------------------------------------------------------------------------------------

def run_forward(device: torch.device, sizes: list[tuple[int, int]], batches: list[int], precisions: list[str],
                reps: int, compile_mode: str | None, deadline: Deadline) -> list[dict[str, Any]]:
    """Milliseconds per forward and per frame: the eager float32 net, then the fast path per precision/batch."""
    torch.manual_seed(0)
    net = P3MNet().eval()
    warmup = 3 if device.type == "cuda" else 1
    rows: list[dict[str, Any]] = []
    for width, height in sizes:
        x1 = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1)).to(device)
        if deadline.passed:
            rows.append({"size": f"{width}x{height}", "variant": "skipped (time)"})
            continue
        try:
            rows.extend(_forward_rows(net, device, x1, batches, precisions, reps, warmup, compile_mode, deadline))
        except Exception as e:  # noqa: BLE001 - one size that fails says why and the others go on
            rows.append({"size": f"{width}x{height}", "variant": f"error: {type(e).__name__}: {e}"[:300]})
        free_memory()
    return rows


def _forward_rows(net: P3MNet, device: torch.device, x1: torch.Tensor, batches: list[int], precisions: list[str],
                  reps: int, warmup: int, compile_mode: str | None, deadline: Deadline) -> list[dict[str, Any]]:
    """One input size's rows: the eager float32 net, then the fast path per precision and batch."""
    size = f"{x1.shape[3]}x{x1.shape[2]}"
    plain = copy.deepcopy(net).to(device, memory_format=torch.channels_last)
    xc = x1.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ms = time_ms(functools.partial(plain, xc), device, reps, warmup)
    rows = [{"size": size, "variant": "eager fp32 (PyTorch defaults)", "batch": 1, "ms": ms, "ms_per_frame": ms}]
    del plain
    free_memory()
    variants = [(p, None) for p in precisions] + ([(precisions[0], compile_mode)] if compile_mode else [])
    for precision, mode in variants:
        runner = FastP3MNet(net, device, precision=precision, compile=mode)
        for batch in batches:
            if deadline.passed:
                break
            x = x1.expand(batch, -1, -1, -1).contiguous()
            x[1:] += 0.01 * torch.randn_like(x[1:])          # distinct frames, never all the same
            ms = time_ms(functools.partial(runner, x), device, reps, warmup)
            name = f"fast {precision}" + (f" + compile {mode}" if mode else "")
            rows.append({"size": size, "variant": name, "batch": batch, "ms": ms, "ms_per_frame": ms / batch,
                         "path": runner.describe()})
        runner.reset()
        del runner
        free_memory()
    return rows


# --- 3. offline pipeline --------------------------------------------------------------------------------------

def timed(fn: Callable[..., int], *args: Any, **kwargs: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        frames = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - a benchmark row that fails says why and the rest go on
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    seconds = time.perf_counter() - start
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds > 0 else 0.0}


def run_pipeline(tmp: Path, device: str, size: tuple[int, int], seconds: float, infer_size: int, preset: str,
                 batches: list[int], weights: Path, deadline: Deadline) -> dict[str, Any]:
    """Decode / decode + encode / full cut-out rows on one generated clip; fps and the ratio to decode + encode."""
    from stream.jobs.config import load_config
    from stream.jobs.demo import make_demo_clip
    from stream.jobs.offline import run_cutout

    clip = make_demo_clip(tmp / "clip.mp4", seconds=seconds, size=size, fps=30)
    rows: dict[str, Any] = {"decode only (CPU threads)": timed(decode_only, clip)}
    probes = hwcodecs.report()
    if probes["nvdec (cuda hwaccel)"].ok:
        rows["decode only (NVDEC hwaccel)"] = timed(decode_only, clip, hwaccel=hwcodecs.pick_decoder().hwaccel)
    if probes["h264_cuvid"].ok:
        rows["decode only (h264_cuvid)"] = timed(decode_only, clip, decoder="h264_cuvid")
    x264 = {"crf": "18", "preset": preset}
    rows[f"decode + encode only (libx264 {preset})"] = timed(decode_encode, clip, tmp / "enc.mp4", "libx264", x264)
    if probes["h264_nvenc"].ok:
        rows["decode + encode only (h264_nvenc)"] = timed(decode_encode, clip, tmp / "enc_nv.mp4", "h264_nvenc",
                                                          hwcodecs.nvenc_options(18, preset))
    hardware_available = any(p.ok for p in probes.values())
    last = batches[-1]
    jobs = [Job(last, "auto", first=True)] if device == "cuda" else []    # CUDA's start-up, once a process
    jobs += [Job(b, "auto") for b in batches]
    if device == "cuda":        # the same job without overlapping batches, to compare
        jobs += [Job(last, "auto", overlap=False)]
    jobs += [Job(last, "all")] if probes["nvdec (cuda hwaccel)"].ok else []
    jobs += [Job(last, "off")] if hardware_available else []

    def job(out: Path, batch: int, hw: str, overlap: bool, results: list[Any]) -> int:
        settings = load_config(model="p3mnet", weights=str(weights), device=device, infer_size=infer_size,
                               preset=preset, batch=batch, hw_codecs=hw)
        results.append(run_cutout(str(clip), str(out), settings, quiet=True, overlap_batches=overlap))
        return results[-1].frames

    for batch, hw, overlap, first in jobs:
        extra = ("" if overlap else ", no overlap") + (", first in the process" if first else "")
        name = f"full cut-out (P3M-Net random, batch {batch}, hw codecs {hw}{extra})"
        if deadline.passed:
            rows[name] = {"error": "skipped (time)"}
            continue
        logs = _capture_logs("stream")
        results: list[Any] = []
        with logs:
            row = timed(job, tmp / f"out_b{batch}_{hw}.mp4", batch, hw, overlap, results)
        row["log"] = logs.lines
        if results:         # the pipeline's own rate: after the model loaded and the output opened
            row["busy_ms_per_frame"], row["pipeline_fps"] = results[-1].busy_ms, results[-1].fps
        rows[name] = row
        free_memory()
    if not deadline.passed:     # what a user's command costs before and beside the frames: imports, CUDA's start-up
        short = make_demo_clip(tmp / "short.mp4", seconds=1.0, size=size, fps=30)
        rows["CLI cut-out in a fresh process, a 1 s clip (start-up included)"] = timed(
            cli_cutout, short, tmp / "short_out.mp4", weights, device, infer_size, preset)
    # Again at the end: a shared machine's codec speed drifts; the ratio uses the first.
    again = timed(decode_encode, clip, tmp / "enc.mp4", "libx264", x264)
    rows[f"decode + encode only (libx264 {preset}), again"] = again
    floor = rows[f"decode + encode only (libx264 {preset})"].get("fps")
    for name, row in rows.items():
        if name.startswith("full") and "fps" in row and floor:
            row["ratio_to_decode_encode"] = row["fps"] / floor
    return rows


def cli_cutout(clip: Path, out: Path, weights: Path, device: str, infer_size: int, preset: str) -> int:
    """`p3m cutout` in a new Python process (as a user runs it); the frames it wrote."""
    done = subprocess.run([sys.executable, "-m", "stream.cli", "cutout", str(clip), "-o", str(out), "-w", str(weights),
                           "--device", device, "--infer-size", str(infer_size), "--preset", preset, "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"p3m cutout exited {done.returncode}: " + " | ".join(done.stderr.strip().splitlines()[-2:]))
    with av.open(str(out)) as container:
        return sum(1 for _ in container.decode(video=0))


class Job(NamedTuple):
    """One full cut-out row: batch, --hw-codecs, batches overlapped (the default); `first`: the process's
    first CUDA job, which pays CUDA's and cuDNN's start-up (the rows after it do not: compare them with each
    other)."""

    batch: int
    hw: str
    overlap: bool = True
    first: bool = False


class _capture_logs(contextlib.AbstractContextManager):
    """Collects INFO lines of one logger while inside (the cut-out's codec and model lines)."""

    def __init__(self, name: str) -> None:
        self.logger, self.lines = logging.getLogger(name), []
        self.handler = logging.Handler(logging.INFO)
        self.handler.emit = lambda record: self.lines.append(record.getMessage())   # type: ignore[method-assign]

    def __enter__(self) -> _capture_logs:
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


# --- 4. live latency -------------------------------------------------------------------------------------------

LIVE_ROWS = (("green", "mixed"), ("blur:25", "mixed"), ("green", "fp16"))    # (background, precision)


def run_live(device: str, size: tuple[int, int], fps: float, seconds: float, infer_size: int,
             weights: Path, background: str = "green", precision: str = "mixed") -> dict[str, Any]:
    """Capture → sink latency through the live pipeline (drop-stale queues), a paced synthetic camera."""
    from model.matters.p3mnet import P3MNetMatter
    from stream.jobs.assembly import plan_stages
    from stream.pipeline.runner import Pipeline
    from stream.sources.synthetic import SyntheticCamera
    from stream.stages.alpha_reuse import AlphaReuse
    from stream.stages.compositing import Compositor
    from stream.stages.matting import MattingStage
    from stream.stages.smoothing import TemporalSmoother

    source = SyntheticCamera(size, fps, seconds=seconds)
    matter = P3MNetMatter(weights, device=device, precision=precision)
    matting = MattingStage(matter, infer_size=infer_size)
    width, height = size
    compositor = Compositor(background)        # as the live job: matting (on CUDA compositing too) on a worker
    worker = plan_stages(matting, TemporalSmoother(), compositor, live=True)
    warm = Frame(index=0, image=np.full((height, width, 3), 128, np.uint8))
    for stage in [*worker, compositor]:        # graph capture and cudnn's searches happen before the clock runs
        warm = stage.process(warm)
    stages: list[Any] = [AlphaReuse(worker), compositor]
    arrangement = f"AlphaReuse(matting worker) → compositor, {background}"
    pipeline = Pipeline(source, stages, NullSink(), policy="live")
    try:
        stats = pipeline.run()
    finally:
        for stage in stages:
            close = getattr(stage, "close", None)
            if close is not None:
                close()
    ms = sorted(1000 * s for s in stats.latencies)
    return {"source": "stream.sources.synthetic.SyntheticCamera", "arrangement": arrangement,
            "size": f"{width}x{height}", "fps_in": fps, "frames_in": stats.frames_in, "written": stats.written,
            "dropped": stats.dropped, "fps_out": stats.fps, "p50_ms": ms[len(ms) // 2] if ms else None,
            "p95_ms": ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else None,
            "reused": getattr(stages[0], "reused", None), "model": matter.describe()}


# --- the run ------------------------------------------------------------------------------------------------------

def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
        "cores": os.cpu_count(), "torch": torch.__version__, "av": av.__version__, "device": str(device),
        "hw_codecs": {name: str(p) for name, p in hwcodecs.report().items()},
    }
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU: checks the script, times nothing")
    ap.add_argument("--shared", default=None, help="folder holding p3m/parity (default ../shared, else bench/shared)")
    ap.add_argument("--json", default=None, help="where to write the results (default $OUT/gpu_bench.json)")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds after which later sections are skipped")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the generated 1080p30 clip")
    ap.add_argument("--live-seconds", type=float, default=8.0)
    ap.add_argument("--preset", default="veryfast", help="x264 preset of the pipeline rows")
    ap.add_argument("--compile", default=None, help="also time the fast path under torch.compile(mode=...)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: parity,forward,pipeline,live")
    ap.add_argument("--sizes", default=None, help="forward sizes, e.g. 512x288,1024x576 (default: three sizes)")
    ap.add_argument("--batches", default=None, help="forward and cut-out batches, e.g. 1,8 (default 1,8)")
    ap.add_argument("--precisions", default=None, help="fast-path precisions timed, e.g. fp16 (default mixed,fp16)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    skip = {s for s in args.skip.split(",") if s}

    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        ap.error("no CUDA device: run on the GPU machine, or use --cpu-smoke")
    device = torch.device("cpu" if smoke else "cuda")
    threads = torch.get_num_threads()
    try:
        if smoke:
            torch.set_num_threads(1)      # a busy 2-core CI machine: a second thread there slows it down
        return _run(args, smoke, device, skip)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace, smoke: bool, device: torch.device, skip: set[str]) -> dict[str, Any]:
    if smoke:
        sizes, batches, precisions, reps = [(64, 64)], [1, 2], ["fp32"], 1
        clip_size, clip_seconds, infer_size = (160, 96), 0.5, 64
        live_size, live_seconds, live_fps = (160, 96), 1.0, 10.0
        seeds = [1]
    else:
        sizes, batches, precisions, reps = [(512, 288), (768, 448), (1024, 576)], [1, 8], ["mixed", "fp16"], args.reps
        clip_size, clip_seconds, infer_size = (1920, 1080), args.seconds, 512
        live_size, live_seconds, live_fps = (1920, 1080), args.live_seconds, 30.0
        seeds = [1, 3]
        if args.sizes:
            sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]  # type: ignore[misc]
        if args.batches:
            batches = [int(b) for b in args.batches.split(",")]
        if args.precisions:
            precisions = args.precisions.split(",")
    shared = Path(args.shared) if args.shared else next(
        (p for p in (ROOT.parent / "shared", ROOT / "bench" / "shared") if (p / "p3m" / "parity").is_dir()), None)
    deadline = Deadline(args.budget)
    started = time.perf_counter()
    out = args.json or (os.path.join(os.environ["OUT"], "gpu_bench.json") if os.environ.get("OUT") else None)
    result: dict[str, Any] = {"environment": environment(device), "smoke": smoke}

    def save() -> None:          # after every section: a run cut short still leaves what it measured
        result["seconds"] = time.perf_counter() - started
        if out:
            Path(out).write_text(json.dumps(result, indent=2, default=str))

    print(f"# {result['environment'].get('gpu', 'CPU')} | torch {torch.__version__} | PyAV {av.__version__} | "
          f"{os.cpu_count()} cores", flush=True)
    if "parity" not in skip:
        if shared is None:
            result["parity"] = {"error": "no parity data: pass --shared (see bench/fetch_gpu_carry.sh)"}
        else:
            result["parity"] = run_parity(shared, device, seeds, ["fp32"] if smoke else list(PRECISIONS))
        _print_parity(result["parity"])
        save()
    if "forward" not in skip:
        result["forward"] = run_forward(device, sizes, batches, precisions, reps, args.compile, deadline)
        _print_forward(result["forward"])
        save()
    if not {"pipeline", "live"} <= skip:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            torch.manual_seed(0)
            weights = tmp / "p3mnet_random.pth"
            save_official(P3MNet().eval(), weights)
            if "pipeline" not in skip:
                result["pipeline"] = run_pipeline(tmp, device.type, clip_size, clip_seconds, infer_size, args.preset,
                                                  batches, weights, deadline)
                _print_pipeline(result["pipeline"], clip_size)
                save()
            if "live" not in skip:
                print("\n## live latency (capture → sink)")
                result["live"] = []
                for background, precision in LIVE_ROWS[:1] if smoke else LIVE_ROWS:
                    try:
                        row = ({"error": "skipped (time)"} if deadline.passed else
                               run_live(device.type, live_size, live_fps, live_seconds, infer_size, weights,
                                        background, precision))
                    except Exception as e:  # noqa: BLE001 - the row says why; what was measured is kept
                        row = {"error": f"{type(e).__name__}: {e}"[:300]}
                    result["live"].append(row)
                    _print_live(row)
                    free_memory()
    save()
    if out:
        print(f"# wrote {out}")
    print(f"# {result['seconds']:.0f} s in all", flush=True)
    return result


def _print_parity(parity: dict[str, Any]) -> None:
    print("\n## parity: fused alpha vs the float32 reference (tolerance 1/255 = 0.0039)")
    if "error" in parity:
        print(parity["error"])
        return
    print(f"{'variant':44} {'max':>8} {'max off ties':>12} {'px > 1/255':>10} {'graph-eager':>11}  pass")
    for name, r in parity.items():
        ge = f"{r['graph_vs_eager_max']:.2e}" if "graph_vs_eager_max" in r else "-"
        print(f"{name:44} {r['max']:8.5f} {r['max_off_ties']:12.5f} {r['over_1_255']:10d} {ge:>11}  "
              f"{'PASS' if r['pass'] else 'FAIL'}", flush=True)


def _print_forward(rows: list[dict[str, Any]]) -> None:
    print("\n## P3M-Net forward (median ms; CUDA events)")
    print(f"{'size':10} {'variant':32} {'batch':>5} {'ms':>9} {'ms/frame':>9}")
    for r in rows:
        if "ms" not in r:
            print(f"{r['size']:10} {r['variant']}")
            continue
        print(f"{r['size']:10} {r['variant']:32} {r['batch']:5d} {r['ms']:9.2f} {r['ms_per_frame']:9.2f}", flush=True)


def _print_pipeline(rows: dict[str, Any], size: tuple[int, int]) -> None:
    print(f"\n## offline pipeline on a generated {size[0]}x{size[1]} 30 fps clip")
    print(f"{'row':75} {'frames':>6} {'s':>7} {'fps':>7} {'ratio':>6} {'pipeline fps':>13}")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:75} {r['error']}")
            continue
        ratio = f"{r['ratio_to_decode_encode']:.2f}" if "ratio_to_decode_encode" in r else ""
        inner = f"{r['pipeline_fps']:.1f}" if "pipeline_fps" in r else ""
        print(f"{name:75} {r['frames']:6d} {r['seconds']:7.2f} {r['fps']:7.1f} {ratio:>6} {inner:>13}", flush=True)
    for name, r in rows.items():
        tag = name.split("(")[1].rstrip(")")
        for line in r.get("log", []):
            if line.startswith(("video:", "model:")):
                print(f"  [{tag}] {line}")
        if "busy_ms_per_frame" in r:
            print(f"  [{tag}] busy ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in r["busy_ms_per_frame"].items()))


def _print_live(r: dict[str, Any]) -> None:
    if "error" in r:
        print(r["error"])
        return
    p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
    p95 = f"{r['p95_ms']:.1f}" if r["p95_ms"] is not None else "-"
    print(f"{r['size']} @ {r['fps_in']:g} fps, {r['arrangement']}: p50 {p50} ms, p95 {p95} ms, "
          f"{r['written']}/{r['frames_in']} frames out ({r['fps_out']:.1f} fps), {r['dropped']} dropped, "
          f"alpha reused {r['reused']} | {r['model']}", flush=True)


if __name__ == "__main__":
    main()
