"""Flicker of the cut-out's matte on clips made from the portraits: a talking head and two cluttered scenes.

Usage: python bench/flicker_clips.py [--portraits ../shared/media/portraits] [--seconds 6]
       [--set FIELD=VALUE ...] [--keep DIR] [--tree DIR]
Each clip (1280×720 at 30 fps, x264 crf 18): the person of a portrait (cut out with its P3M-Net R34 matte) over
the photo's background with the person inpainted out; the person sways ±6 px, nods ±3 px and tilts ±1.5°,
moving for a second and holding still for the next, as a person talking does; N(0, 1) sensor noise a frame. The
clip goes through `p3m cutout --alpha-out` (default options, or those `--set` gives) and the matte's flicker is
`p3m eval`'s: mean |α_t − α_{t−1}| where the picture stood still (model/evaluation/temporal.py). Prints one line a
clip: its flicker. `--tree`: the cut-out of another checkout (its
`p3m cutout`, run as a subprocess with its code) scored the same way, for before and after.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import yaml
from portrait_quality import load_portrait

from model.evaluation.videos import evaluate_video
from stream import cutout

CLIPS = {"talking head": "p_d684dae3", "clutter: ledge": "p_09ba26b4", "clutter: tarp": "p_51c916fc"}
SIZE = (1280, 720)
FPS = 30


def fit(picture: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """`picture` scaled to cover `size` (width, height) and cropped to it, centred."""
    width, height = size
    scale = max(width / picture.shape[1], height / picture.shape[0])
    scaled = cv2.resize(picture, (math.ceil(picture.shape[1] * scale), math.ceil(picture.shape[0] * scale)),
                        interpolation=cv2.INTER_AREA)
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return scaled[top:top + height, left:left + width]


def background_without_person(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo with the person (grown by 15 px) inpainted out, at a quarter size for speed, scaled back."""
    hole = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((31, 31), np.uint8))
    small = cv2.resize(rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    filled = cv2.resize(cv2.inpaint(small, small_hole, 5, cv2.INPAINT_TELEA), (rgb.shape[1], rgb.shape[0]),
                        interpolation=cv2.INTER_CUBIC)
    return np.where(hole[..., None] == 1, filled, rgb)


def motion(t: float) -> tuple[float, float, float]:
    """(dx, dy, degrees) at `t` seconds: a second of movement, then a second held still."""
    phase = min(t % 2.0, 1.0)                  # 0 → 1 while moving, held at 1 for the second after
    cycle = t // 2.0
    swing = math.sin(math.pi * phase) * (1 if cycle % 2 == 0 else -1)
    return 6 * swing, 3 * math.sin(2 * math.pi * phase), 1.5 * swing


def make_clip(rgb: np.ndarray, alpha: np.ndarray, path: Path, seconds: float, seed: int = 0) -> None:
    """The person moving over the inpainted background, with sensor noise, x264 crf 18."""
    rgb, alpha = fit(rgb), fit(alpha)
    background = background_without_person(rgb, alpha).astype(np.float32)
    person = rgb.astype(np.float32)
    rng = np.random.default_rng(seed)
    width, height = SIZE
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * FPS)):
            dx, dy, degrees = motion(i / FPS)
            warp = cv2.getRotationMatrix2D((width / 2, height), degrees, 1.0)
            warp[:, 2] += (dx, dy)
            moved = cv2.warpAffine(person, warp, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.warpAffine(alpha, warp, SIZE, flags=cv2.INTER_LINEAR)[..., None]
            frame = a * moved + (1 - a) * background + rng.normal(0, 1, moved.shape).astype(np.float32)
            picture = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode())


def run_other_tree(tree: Path, clip: Path, out: Path, matte: Path, settings: list[str]) -> None:
    """`p3m cutout CLIP -o OUT --alpha-out MATTE` with `tree`'s code; `settings` (FIELD=VALUE) as --set."""
    command = [sys.executable, "-m", "stream.cli", "cutout", str(clip), "-o", str(out), "--alpha-out", str(matte)]
    command += [arg for item in settings for arg in ("--set", item)]
    done = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: p3m cutout failed: {done.stderr.strip()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portraits", default="../shared/media/portraits")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a cut-out option, e.g. --set smoothing=false (YAML value syntax)")
    ap.add_argument("--tree", default=None, help="score another checkout's cut-out (its p3m, a subprocess)")
    ap.add_argument("--keep", default=None, help="a folder for the clips (made once, reused when there)")
    args = ap.parse_args()
    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    root = Path(args.portraits)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for label, stem in CLIPS.items():
            clip = folder / f"{stem}.mp4"
            if not clip.exists():
                make_clip(*load_portrait(root, stem), clip, args.seconds)
            matte = Path(tmp) / f"{stem}_matte.mkv"
            if args.tree:
                run_other_tree(Path(args.tree), clip, Path(tmp) / f"{stem}_out.mp4", matte, args.set)
            else:
                cutout(clip, Path(tmp) / f"{stem}_out.mp4", alpha_out=str(matte), quiet=True, overwrite=True,
                       **options)
            flicker = evaluate_video(matte, video=clip).metrics["FLICKER"]
            print(f"{label:16} flicker {flicker:.6f}", flush=True)


if __name__ == "__main__":
    main()
