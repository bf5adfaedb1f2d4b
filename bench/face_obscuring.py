"""How well `model.faces.obscure` hides a face: the highest score either bundled detector gives the obscured face.

Usage: python bench/face_obscuring.py [--json bench/face_obscuring.json]
scikit-image's astronaut (a real, unblurred face) is scaled so the face is 24-400 px wide. Each detector's
own face box is padded as prepare-ppt pads it (a quarter of its size on every side) or as the cut-out's
tracker does (0.3, lifted), obscured in each style, and shown again to both detectors (whole image and tiles
of 1/2 and 1/4, threshold 0.3). A detection counts when it overlaps the face (IoU ≥ 0.3). The line to stay
under is 0.4 (the detectors' own threshold is 0.5). Also times `obscure` on a 1280×720 frame.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path

import cv2
from skimage import data

from model.faces import FACE_MODELS, STYLE_NAMES, FaceDetector, clip, iou, obscure, pad
from stream.stages.face_tracking import LIFT, PADDING

SIZES = (24, 48, 96, 150, 256, 400)                           # face widths, px
ASTRONAUT_FACE = 101                                           # the face's width in the 512×512 original, px
PADDINGS = {"prepare-ppt (0.25)": lambda f: pad(f, 0.25),
            "tracker (0.35, lifted)": lambda f: pad(f, PADDING, lift=LIFT)}


def _detail(image) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


DETAIL: dict[str, list[float]] = {}      # style → the box's Laplacian variance after / before, per size and box


def strength() -> dict[str, list[float]]:
    """(style | padding) → the highest score on the obscured face, per face size."""
    detectors = {m: FaceDetector(m, 0.3, tile_levels=2) for m in FACE_MODELS}
    astronaut = data.astronaut()
    scores: dict[str, list[float]] = {}
    try:
        for width in SIZES:
            s = width / ASTRONAUT_FACE
            image = cv2.resize(astronaut, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            h, w = image.shape[:2]
            faces = [max(d(image), key=lambda b: b.score) for d in detectors.values()]
            for style in sorted(set(STYLE_NAMES.values())):
                for name, padded in PADDINGS.items():
                    worst = 0.0
                    for face in faces:
                        box = clip(padded(face), (w, h))
                        out = obscure(image.copy(), [box], style)
                        x0, y0, x1, y1 = box
                        DETAIL.setdefault(style, []).append(_detail(out[y0:y1, x0:x1]) / _detail(image[y0:y1, x0:x1]))
                        for d in detectors.values():
                            worst = max([worst, *(b.score for b in d(out) if any(iou(b, f) >= 0.3 for f in faces))])
                    scores.setdefault(f"{style} | {name}", []).append(round(worst, 3))
    finally:
        for d in detectors.values():
            d.close()
    return scores


def cost(rounds: int = 200) -> dict[str, float]:
    """Median ms of `obscure` for a large and a small box in a 1280×720 frame, per style (one OpenCV thread)."""
    cv2.setNumThreads(1)
    frame = cv2.resize(data.astronaut(), (1280, 720))
    out = {}
    for box in ((490, 165, 790, 555), (600, 300, 660, 378)):
        for style in sorted(set(STYLE_NAMES.values())):
            times = []
            for _ in range(rounds):
                image = frame.copy()
                start = time.perf_counter()
                obscure(image, [box], style)
                times.append(time.perf_counter() - start)
            out[f"{style}, {box[2] - box[0]}×{box[3] - box[1]} box"] = 1000 * statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench/face_obscuring.json")
    args = ap.parse_args()
    scores = strength()
    print(f"highest detector score on the obscured face, faces {SIZES[0]}-{SIZES[-1]} px wide (line: 0.4)")
    print(f"{'style | padding':40} {'max':>5} {'sizes >= 0.4':>13}   per size")
    for name, values in scores.items():
        print(f"{name:40} {max(values):5.2f} {sum(v >= 0.4 for v in values):>7}/{len(values):<5}  "
              + " ".join(f"{v:.2f}" for v in values))
    print("detail left in the box (Laplacian variance after / before), worst: "
          + ", ".join(f"{k} {max(v):.3f}" for k, v in DETAIL.items()))
    ms = cost()
    print("obscure, median ms: " + ", ".join(f"{k} {v:.2f}" for k, v in ms.items()))
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "face_widths_px": SIZES, "scores": scores, "obscure_ms": ms,
        "detail_left_worst": {k: max(v) for k, v in DETAIL.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
