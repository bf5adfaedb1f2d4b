"""Score a matte video: flicker against its input video, and with a ground-truth matte video the per-frame MAD
and MSE, dtSSD and MESSDdt (model/evaluation/temporal.py). A "video" is a file PyAV reads or a folder of
images (sorted by name)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError
from model.evaluation.temporal import FlickerMeter, dtssd, messddt
from model.imageio import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class VideoReport:
    """Means over the frames (or frame pairs) of a matte video; NaN where a figure had nothing to measure."""

    frames: int
    metrics: dict[str, float]

    def to_dict(self) -> dict:
        return {"frames": self.frames, "mean": {k: (v if math.isfinite(v) else None) for k, v in self.metrics.items()}}

    def table(self) -> str:
        lines = [f"frames: {self.frames}"]
        lines += [f"{name:<9} {value:.6f}" for name, value in self.metrics.items()]
        return "\n".join(lines)


def is_video(path: str | Path) -> bool:
    """True for a file that is not a still image (a folder is an image sequence, scored as a folder of mattes
    only when it holds ground-truth names; see evaluate_folders)."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() not in IMAGE_EXTENSIONS


def read_frames(path: str | Path, gray: bool) -> Iterator[np.ndarray]:
    """The frames of a video file or a folder of images: H×W uint8 (gray) or H×W×3 RGB."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise P3MError(f"no images in folder {path}", "give a video file or a folder of PNG/JPEG frames")
        for file in files:
            image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
            if image is None:
                raise P3MError(f"cannot read image {file}", "is it a valid PNG/JPEG file?")
            yield image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return
    if not path.is_file():
        raise P3MError(f"video not found: {path}", "check the path")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise P3MError(f"no video stream in {path}", "give a video file or a folder of frames")
            for frame in container.decode(video=0):
                image = frame.to_ndarray(format="gray" if gray else "rgb24")
                turns = round(frame.rotation / 90) % 4        # a phone's display matrix, as p3m's own decoding
                yield np.ascontiguousarray(np.rot90(image, turns)) if turns else image
    except av.FFmpegError as e:
        raise P3MError(f"cannot read video {path}: {e}", "is it a video file PyAV/FFmpeg can open?") from None


def evaluate_video(pred: str | Path, video: str | Path | None = None, gt: str | Path | None = None) -> VideoReport:
    """Score the matte video `pred`: FLICKER with the input `video`; MAD, MSE, dtSSD and MESSDdt with the
    ground-truth matte video `gt`. Every video must have as many frames, of one size."""
    if video is None and gt is None:
        raise P3MError("nothing to score a matte video against", "give --video (flicker) and/or --gt (a matte video)")
    streams = {"prediction": read_frames(pred, gray=True)}
    if video is not None:
        streams["input video"] = read_frames(video, gray=False)
    if gt is not None:
        streams["ground truth"] = read_frames(gt, gray=True)
    meter = FlickerMeter()
    sums: dict[str, float] = {"MAD": 0.0, "MSE": 0.0, "dtSSD": 0.0, "MESSDdt": 0.0}
    frames, previous = 0, None
    for items in zip_longest(*streams.values()):
        if any(item is None for item in items):
            counts = ", ".join(f"{name}" for name, item in zip(streams, items) if item is None)
            raise P3MError(f"the videos differ in length: {counts} ended at frame {frames}",
                           "score a matte against the video (and ground truth) it was made from")
        named = dict(zip(streams, items))
        alpha = named["prediction"].astype(np.float32) / 255.0
        for name, item in named.items():
            if item.shape[:2] != alpha.shape:
                raise P3MError(f"size mismatch at frame {frames}: the prediction is {alpha.shape[1]}x"
                               f"{alpha.shape[0]}, the {name} {item.shape[1]}x{item.shape[0]}",
                               "score a matte at the size of the video it was made from")
        if "input video" in named:
            meter.add(alpha, named["input video"])
        if "ground truth" in named:
            true = named["ground truth"].astype(np.float32) / 255.0
            sums["MAD"] += float(np.mean(np.abs(alpha - true)))
            sums["MSE"] += float(np.mean(np.square(alpha - true)))
            if previous is not None:
                sums["dtSSD"] += dtssd(alpha, previous[0], true, previous[1])
                sums["MESSDdt"] += messddt(alpha, previous[0], true, previous[1])
            previous = (alpha, true)
        frames += 1
    if frames == 0:
        raise P3MError(f"no frames in {pred}", "give a matte video with frames")
    metrics: dict[str, float] = {}
    if video is not None:
        metrics["FLICKER"] = meter.value
    if gt is not None:
        pairs = frames - 1
        metrics.update(MAD=sums["MAD"] / frames, MSE=sums["MSE"] / frames,
                       dtSSD=sums["dtSSD"] / pairs if pairs else float("nan"),
                       MESSDdt=sums["MESSDdt"] / pairs if pairs else float("nan"))
    return VideoReport(frames, metrics)
