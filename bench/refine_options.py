"""`--refine`'s options on the 14 portraits: working size, band width and pymatting's alpha solvers, scored as
bench/portrait_quality.py scores (mean |α − P3M-Net R34's matte| of the default matte refined, 8-bit).

Usage: python bench/refine_options.py [--portraits ../shared/media/portraits] [--solvers cf,lbdm,knn,rw,lkm]
Prints one line per option: mean and worst MAD, seconds a photo (the solve only).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from portrait_quality import load_portraits, matte_with_stages

from model.evaluation.metrics import mad
from model.matters.selfie import MediaPipeMatter
from model.refine import BAND_PX, WORK_SIZE, refine_alpha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portraits", default="../shared/media/portraits")
    ap.add_argument("--solvers", default="cf,lbdm,knn,rw,lkm")
    args = ap.parse_args()
    import pymatting

    rgbs, refs = load_portraits(Path(args.portraits))
    with MediaPipeMatter() as matter:
        base = {stem: matte_with_stages(matter, rgb, "main") for stem, rgb in rgbs.items()}

    def report(label: str, alphas: dict[str, np.ndarray], seconds: float) -> None:
        scores = [mad(np.round(alphas[s] * 255) / 255, refs[s]) for s in rgbs]
        print(f"{label:32} mean {statistics.mean(scores):.5f}  worst {max(scores):.4f}  {seconds:.2f} s/photo",
              flush=True)

    report("default, not refined", base, 0.0)
    options = [("cf", WORK_SIZE, BAND_PX), ("cf", WORK_SIZE, 6), ("cf", WORK_SIZE, 12), ("cf", 1024, BAND_PX),
               ("cf", 1280, 10), ("cf", 4000, BAND_PX)]
    options += [(name, WORK_SIZE, BAND_PX) for name in args.solvers.split(",") if name != "cf"]
    for name, work_size, band_px in options:
        solver = getattr(pymatting, f"estimate_alpha_{name}")
        start = time.perf_counter()
        alphas = {s: refine_alpha(rgbs[s], base[s], work_size, band_px, solver) for s in rgbs}
        report(f"{name}, {work_size} px, band ±{band_px}", alphas, (time.perf_counter() - start) / len(rgbs))


if __name__ == "__main__":
    main()
