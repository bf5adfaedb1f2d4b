"""CPU benchmark of the offline pipeline at 720p: decode-only, decode+encode-only, full cut-out (green MP4),
and the same cut-out to a transparent WebM (VP9 with alpha).

Usage: python bench/cpu_pipeline.py [--seconds 10] [--size 1280x720] [--repeat 3] [--json bench/cpu_pipeline.json]
       [--webm-preset veryfast]
Each round runs the rows back to back and takes its own ratios, full / (decode + encode) and transparent WebM /
green MP4: on shared cores the speed drifts between minutes, less within a round. Prints every round and the
median ratios, and writes JSON with the machine's name. The full rows use the bundled model and are the whole
job (model loading included); the row under the first is its pipeline run alone. The WebM's quality is the
PSNR of its colour and alpha planes against the same job's lossless FFV1 output (.mkv), last round only.
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

import av
import numpy as np
import yaml
from baselines import decode_encode, decode_only

from stream import cutout
from stream.jobs.demo import make_demo_clip

FULL, RUN = "full cut-out (bundled model)", "  of which the pipeline run"
WEBM = "transparent WebM cut-out"


def timed(fn, *args, **kwargs) -> tuple[int, float]:
    start = time.perf_counter()
    frames = fn(*args, **kwargs)
    return frames, time.perf_counter() - start


def one_round(clip: Path, tmp: Path, crf: int, preset: str, webm_preset: str, options: dict) -> dict:
    """The rows' fps, the three ratios and the cut-out's busy ms per thread, from one pass of each."""
    rows = {
        "decode only": timed(decode_only, clip),
        "decode + encode only": timed(decode_encode, clip, tmp / "enc.mp4", "libx264",
                                       {"crf": str(crf), "preset": preset}),
    }
    start = time.perf_counter()
    result = cutout(clip, tmp / "out.mp4", crf=crf, preset=preset, quiet=True, overwrite=True, **options)
    rows[FULL] = (result.frames, time.perf_counter() - start)
    rows[RUN] = (result.frames, result.seconds)           # without model loading
    rows[WEBM] = timed(lambda: cutout(clip, tmp / "out.webm", background="transparent", preset=webm_preset,
                                      quiet=True, overwrite=True, **options).frames)
    fps = {name: n / s for name, (n, s) in rows.items()}
    return {"fps": fps, "frames": result.frames, "model": result.model, "busy_ms_per_frame": result.busy_ms,
            "ratio": fps[FULL] / fps["decode + encode only"], "ratio_run": fps[RUN] / fps["decode + encode only"],
            "ratio_webm": fps[WEBM] / fps[FULL]}


def rgba_frames(path: Path) -> np.ndarray:
    """A transparent file's frames as N×H×W×4 uint8 (libvpx-vp9 for WebM: FFmpeg's own decoder drops alpha)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "vp9":
            return np.stack([f.to_ndarray(format="rgba") for f in container.decode(stream)])
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [f for p in container.demux(stream) if p.size for f in decoder.decode(p)] + decoder.decode(None)
        return np.stack([f.to_ndarray(format="rgba") for f in frames])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def webm_quality(clip: Path, tmp: Path, options: dict) -> dict:
    """PSNR (dB) of the last WebM's colour (RGB) and alpha planes against the same job's lossless FFV1 output."""
    cutout(clip, tmp / "lossless.mkv", background="transparent", quiet=True, overwrite=True, **options)
    webm, lossless = rgba_frames(tmp / "out.webm"), rgba_frames(tmp / "lossless.mkv")
    return {"psnr_colour_db": psnr(webm[..., :3], lossless[..., :3]),
            "psnr_alpha_db": psnr(webm[..., 3], lossless[..., 3])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--webm-preset", default=None, help="--preset of the transparent WebM row (default: --preset)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the ratio reported is their median")
    ap.add_argument("--json", default="bench/cpu_pipeline.json")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a cut-out option for the full row, e.g. --set infer_size=384 (YAML value syntax)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_demo_clip(Path(tmp) / "in.mp4", seconds=args.seconds, size=(w, h))
        webm_preset = args.webm_preset or args.preset
        rounds = [one_round(clip, Path(tmp), args.crf, args.preset, webm_preset, options) for _ in range(args.repeat)]
        quality = webm_quality(clip, Path(tmp), options)
    names = list(rounds[0]["fps"])
    print(f"fps per round ({rounds[0]['frames']} frames, {w}x{h}, {os.cpu_count()} cores, {rounds[0]['model']})")
    print(f"{'row':34} " + " ".join(f"{k + 1:>7}" for k in range(len(rounds))))
    for name in names:
        print(f"{name:34} " + " ".join(f"{r['fps'][name]:7.1f}" for r in rounds))
    for key, label in (("ratio", "full / (decode + encode)"), ("ratio_run", "  pipeline run / (decode + encode)"),
                       ("ratio_webm", "transparent WebM / green MP4")):
        print(f"{label:34} " + " ".join(f"{r[key]:7.2f}" for r in rounds))
    ratio, ratio_run, ratio_webm = (statistics.median(r[key] for r in rounds)
                                    for key in ("ratio", "ratio_run", "ratio_webm"))
    print(f"median: full / (decode + encode) = {ratio:.2f}, pipeline run only {ratio_run:.2f}; "
          f"transparent WebM (--preset {webm_preset}) / green MP4 = {ratio_webm:.2f}")
    print(f"WebM vs lossless FFV1: PSNR colour {quality['psnr_colour_db']:.1f} dB, "
          f"alpha {quality['psnr_alpha_db']:.1f} dB")
    last = rounds[-1]["busy_ms_per_frame"]
    print("busy ms/frame per thread (last round): " + ", ".join(f"{k} {v:.1f}" for k, v in last.items()))
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "size": args.size, "options": options, "model": rounds[0]["model"], "rounds": rounds,
        "median_ratio_full_over_decode_encode": ratio, "median_ratio_pipeline_run_over_decode_encode": ratio_run,
        "webm_preset": webm_preset, "median_ratio_webm_over_green_mp4": ratio_webm, "webm_quality": quality,
    }, indent=2))


if __name__ == "__main__":
    main()
