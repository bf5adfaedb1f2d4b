"""Matte quality of the bundled model on real portraits: the default, the old default and each lever alone.

Usage: python bench/portrait_quality.py [--portraits ../shared/media/portraits] [--refine] [--sheets bench/sheets]
       [--json bench/portrait_quality.json]

Each photo is matted at its own size as a one-frame video (the stages a cut-out runs: shrink to 512, model,
subject selection, smoothing, guided upsampling) and scored against P3M-Net R34's matte (mean |α − ref|, the
official MAD of model/evaluation/metrics.py). Columns: mean and worst MAD, and the share of the error outside the
edge band (pixels farther than 10 px from the reference's soft pixels: whole regions kept or dropped, not hair).
The default row is also run through the whole `cutout` job (a one-frame PNG sequence in, the matte out as PNG)
as a check that the stages here are the job's. `--refine`: a row with the cut-out's `--refine`, where this tree
has it. `--sheets`: contact sheets of the 4 worst images of the old and the new default.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from model.evaluation.evaluate import evaluate_folders
from model.evaluation.metrics import mad
from model.evaluation.sheet import contact_sheet
from model.imageio import read_rgb, write_alpha_png
from model.matters.base import Matter
from model.matters.selfie import MediaPipeMatter, _segment
from stream import cutout
from stream.frames import Frame
from stream.jobs.assembly import plan_stages
from stream.jobs.config import CutoutConfig
from stream.stages.compositing import Compositor
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother
from stream.stages.subjects import SubjectSelection

BAND_PX = 10


class AspectRule(Matter):
    """The old default: the landscape model for images wider than 4:3, the general one for the rest."""

    name = "mediapipe-by-aspect"

    def __init__(self) -> None:
        self.models = {v: MediaPipeMatter(v) for v in ("general", "landscape")}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return self.models["landscape" if 3 * w > 4 * h else "general"](rgb)

    def describe(self) -> str:
        return "landscape for frames wider than 4:3, else general"

    def close(self) -> None:
        for m in self.models.values():
            m.close()


class Letterboxed(Matter):
    """The general model on the image padded (black) to a square, so it is not squeezed into 256×256."""

    name = "mediapipe-letterboxed"

    def __init__(self) -> None:
        self.model = MediaPipeMatter("general")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        side = max(h, w)
        y, x = (side - h) // 2, (side - w) // 2
        square = np.zeros((side, side, 3), np.uint8)
        square[y:y + h, x:x + w] = rgb
        return self.model(square)[y:y + h, x:x + w].copy()

    def describe(self) -> str:
        return "general, letterboxed to a square"

    def close(self) -> None:
        self.model.close()


class Fused(Matter):
    """Both models on every frame, and per pixel the one surer of itself (farther from 0.5)."""

    name = "mediapipe-fused"

    def __init__(self) -> None:
        self.model = MediaPipeMatter("auto")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        general, landscape = (_segment(self.model._segmenters[v][0], rgb) for v in ("general", "landscape"))
        return np.where(np.abs(general - 0.5) >= np.abs(landscape - 0.5), general, landscape)

    def describe(self) -> str:
        return "both, per pixel the surer"

    def close(self) -> None:
        self.model.close()


# name -> (matter factory, subjects mode or None)
ROWS: dict[str, tuple[Callable[[], Matter], str | None]] = {
    "old default: landscape for frames wider than 4:3": (AspectRule, None),
    "general forced": (lambda: MediaPipeMatter("general"), None),
    "landscape forced": (lambda: MediaPipeMatter("landscape"), None),
    "general, letterboxed": (Letterboxed, None),
    "both fused per pixel (2 models a frame)": (Fused, None),
    "lever: model chosen by confidence alone": (lambda: MediaPipeMatter("auto"), None),
    "lever: subjects main alone (old model rule)": (AspectRule, "main"),
    "new default (chosen by confidence + subjects main)": (lambda: MediaPipeMatter("auto"), "main"),
}
OLD, NEW = "old default: landscape for frames wider than 4:3", "new default (chosen by confidence + subjects main)"


def matte_with_stages(matter: Matter, rgb: np.ndarray, subjects: str | None) -> np.ndarray:
    """One image through the cut-out's CPU stages (a one-frame video), its full-resolution alpha."""
    matting = MattingStage(matter, infer_size=CutoutConfig.infer_size)     # not closed: the row closes `matter`
    selection = SubjectSelection(subjects) if subjects else None
    stages = plan_stages(matting, TemporalSmoother(), Compositor("green"), subjects=selection)
    frame = Frame(index=0, image=rgb)
    for stage in stages:
        frame = stage.process(frame)
    return np.clip(frame.alpha, 0.0, 1.0)


def matte_with_job(rgb: np.ndarray, tmp: Path, **options: object) -> np.ndarray:
    """One image through the whole `cutout` job with default options (plus `options`): a one-frame lossless
    video in (FFV1 RGB), the matte out as lossless FFV1 gray."""
    clip, matte = tmp / "in.mkv", tmp / "matte.mkv"
    h, w = rgb.shape[:2]
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "bgr0"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb[:h - h % 2, :w - w % 2], format="rgb24")))
        container.mux(stream.encode())
    for old in (tmp / "out.mp4", matte):
        old.unlink(missing_ok=True)
    cutout(str(clip), str(tmp / "out.mp4"), alpha_out=str(matte), quiet=True, **options)
    with av.open(str(matte)) as container:
        alpha = next(container.decode(video=0)).to_ndarray(format="gray").astype(np.float32) / 255.0
    full = np.zeros((h, w), np.float32)
    full[:alpha.shape[0], :alpha.shape[1]] = alpha
    return full


def scores(alpha: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(MAD, share of the absolute error outside the edge band)."""
    soft = ((ref > 0) & (ref < 1)).astype(np.uint8)
    band = cv2.dilate(soft, np.ones((2 * BAND_PX + 1, 2 * BAND_PX + 1), np.uint8)).astype(bool)
    error = np.abs(alpha - ref)
    return mad(alpha, ref), float(error[~band].sum() / max(error.sum(), 1e-9))


def load_portrait(root: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo `root`/images/`stem`.jpg (RGB) and its P3M-Net R34 matte (float32 in [0, 1])."""
    ref = cv2.imread(str(root / "p3m_r34_alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    return read_rgb(root / "images" / f"{stem}.jpg"), ref.astype(np.float32) / 255.0


def load_portraits(root: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every photo under `root`/images and its matte (`load_portrait`): two dicts by stem."""
    stems = [p.stem for p in sorted((root / "images").glob("*.jpg"))]
    if not stems:
        raise SystemExit(f"no portraits in {root / 'images'}")
    loaded = {stem: load_portrait(root, stem) for stem in stems}
    return {s: rgb for s, (rgb, _) in loaded.items()}, {s: ref for s, (_, ref) in loaded.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portraits", default="../shared/media/portraits")
    ap.add_argument("--refine", action="store_true", help="add a row with the cut-out's --refine (where it exists)")
    ap.add_argument("--no-job", action="store_true", help="skip the check through the whole cutout job")
    ap.add_argument("--sheets", default=None, help="folder for the 4-worst contact sheets, old and new default")
    ap.add_argument("--json", default="bench/portrait_quality.json")
    args = ap.parse_args()
    root = Path(args.portraits)
    rgbs, refs = load_portraits(root)

    results: dict[str, dict[str, tuple[float, float]]] = {}
    alphas: dict[str, dict[str, np.ndarray]] = {}
    for name, (factory, subjects) in ROWS.items():
        with factory() as matter:
            alphas[name] = {stem: matte_with_stages(matter, rgb, subjects) for stem, rgb in rgbs.items()}
        results[name] = {stem: scores(alphas[name][stem], refs[stem]) for stem in rgbs}
        print(f"{name}: {statistics.mean(m for m, _ in results[name].values()):.4f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = {"new default, through the cutout job": {}} if not args.no_job else {}
        if args.refine:
            if "refine" not in CutoutConfig.__dataclass_fields__:
                raise SystemExit("--refine: this tree's cut-out has no refine option yet")
            jobs["new default + --refine (cutout job)"] = {"refine": True}
        for name, options in jobs.items():
            results[name] = {stem: scores(matte_with_job(rgb, Path(tmp), **options), refs[stem])
                             for stem, rgb in rgbs.items()}
            print(f"{name}: {statistics.mean(m for m, _ in results[name].values()):.4f}", flush=True)
        if args.sheets:
            draw_sheets(Path(args.sheets), Path(tmp), root, {k: alphas[k] for k in (OLD, NEW)})
    print_table(results)
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "portraits": str(root), "band_px": BAND_PX,
        "rows": {name: {"mean_mad": statistics.mean(m for m, _ in per.values()),
                        "per_image": {stem: {"mad": m, "outside_band": o} for stem, (m, o) in per.items()}}
                 for name, per in results.items()},
    }, indent=2))


def print_table(results: dict[str, dict[str, tuple[float, float]]]) -> None:
    print("\n| path | mean MAD | share of error outside the edge band | worst image |")
    print("|---|---|---|---|")
    for name, per in results.items():
        worst = max(per, key=lambda stem: per[stem][0])
        share = sum(m * o for m, o in per.values()) / sum(m for m, _ in per.values())
        print(f"| {name} | {statistics.mean(m for m, _ in per.values()):.4f} | {share:.0%} | "
              f"{per[worst][0]:.3f} ({worst}) |")


def draw_sheets(out: Path, tmp: Path, root: Path, alphas: dict[str, dict[str, np.ndarray]]) -> None:
    """The 4 worst images of each row, through `p3m eval --sheet`'s contact_sheet."""
    out.mkdir(parents=True, exist_ok=True)
    for label, (name, per) in zip(("before", "after"), alphas.items()):
        folder = tmp / label
        folder.mkdir(exist_ok=True)
        for stem, alpha in per.items():
            write_alpha_png(folder / f"{stem}.png", alpha)
        report = evaluate_folders(folder, root / "p3m_r34_alpha", fast=True)
        drawn = contact_sheet(report, root / "images", out / f"portraits_worst4_{label}.png", rows=4, tile_height=160)
        print(f"{label} ({name}): {out / f'portraits_worst4_{label}.png'}: {', '.join(drawn)}")


if __name__ == "__main__":
    main()
