"""Faces, for privacy: the bundled MediaPipe detectors, face-box geometry, and `obscure`, the one way a face is
hidden (prepare-ppt's training images; the cut-out's and live's frames through stream/stages/faces.py).

Strong enough means: after `obscure` on a face box padded by at least a quarter of its size, neither bundled
detector (whole image and tiles of 1/2 and 1/4) scores the face (a box with IoU ≥ 0.3) at 0.4 or more, in either
style, for faces 40 to 400 px wide (the detectors' own threshold is 0.5).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import cv2
import numpy as np

from model.bundled import ASSETS, import_mediapipe, quiet_native_stderr
from model.errors import P3MError

FACE_MODELS = {"short": "face_detection_short_range.tflite",           # faces within ~2 m: webcams
               "full": "face_detection_full_range_sparse.tflite"}      # up to ~5 m: rooms, stages

# The one table of style names: `p3m cutout/live --blur-style` says gaussian where `p3m prepare-ppt --style` says blur.
STYLE_NAMES = {"pixelate": "pixelate", "gaussian": "blur", "blur": "blur"}
STYLES = ("pixelate", "gaussian")         # cut-out and live: --blur-style, the config's blur_style
PPT_STYLES = ("blur", "pixelate")         # prepare-ppt: --style
DEFAULT_STYLE = "pixelate"                # every command's default: the lower detector scores (bench/RESULTS.md)
PIXELATE_CELLS = 3                        # mosaic cells across the box's long side
BLUR_SIGMA = 1 / 3                        # Gaussian sigma, as a fraction of the box's long side

Box = Sequence[float]                     # x0, y0, x1, y1 in pixels, x1 and y1 exclusive (a FaceBox, a tuple, …)


class FaceBox(NamedTuple):
    """A detected face: pixel box [x0, x1) × [y0, y1) and the detector's score."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float = 1.0


def check_face_model(model: str) -> str:
    """`model` if it names a bundled face detector, else a P3MError."""
    if model not in FACE_MODELS:
        raise P3MError(f"unknown face model {model!r}", f"use one of: {', '.join(FACE_MODELS)}")
    return model


def check_style(style: str) -> str:
    """The style `style` names (pixelate or blur; gaussian is blur), else a P3MError."""
    if style not in STYLE_NAMES:
        raise P3MError(f"unknown face blur style {style!r}", "use pixelate, or gaussian (also called blur)")
    return STYLE_NAMES[style]


def pad(box: Box, padding: float, lift: float = 0.0) -> tuple[float, float, float, float]:
    """`box` grown by `padding` × its width left and right and × its height above and below; `lift` moves that
    share of the lower padding to the top (detector boxes stop at the brows: hair and forehead are above)."""
    x0, y0, x1, y1 = box[:4]
    dx, dy = padding * (x1 - x0), padding * (y1 - y0)
    return x0 - dx, y0 - dy * (1 + lift), x1 + dx, y1 + dy * (1 - lift)


def clip(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The integer box covering `box` (rounded outwards), clipped to `size` = (width, height); None when empty."""
    width, height = size
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a: Box, b: Box) -> float:
    """Intersection over union: whether two boxes are the same face (tracking)."""
    inter = _intersection(a, b)
    union_area = _area(a) + _area(b) - inter
    return inter / union_area if union_area > 0 else 0.0


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area: 1 when one box lies inside the other (a face cut by a tile edge)."""
    smaller = min(_area(a), _area(b))
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def union(a: Box, b: Box) -> tuple[float, float, float, float]:
    """The smallest box holding both."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def obscure(image: np.ndarray, boxes: Iterable[Box], style: str = DEFAULT_STYLE) -> np.ndarray:
    """Hide each (padded) box of `image` in place and return `image`; RGB or RGBA, the alpha left as it is.

    `pixelate`: a mosaic of PIXELATE_CELLS cells across the box's long side, cell edges softened (hard edges are
    fine detail of their own). `blur` (or `gaussian`): sigma of BLUR_SIGMA × the long side. Boxes are clipped here.
    """
    kind = check_style(style)
    height, width = image.shape[:2]
    for box in boxes:
        region = clip(box, (width, height))
        if region is None:
            continue
        x0, y0, x1, y1 = region
        roi = image[y0:y1, x0:x1, :3]
        roi[...] = _pixelate(roi) if kind == "pixelate" else _blur(roi)
    return image


def _pixelate(roi: np.ndarray) -> np.ndarray:
    h, w = roi.shape[:2]
    cell = max(w, h) / PIXELATE_CELLS
    cells = cv2.resize(roi, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
    return _smooth(cells, (w, h), 0.25 * cell, cv2.INTER_NEAREST)


def _blur(roi: np.ndarray) -> np.ndarray:
    h, w = roi.shape[:2]
    return _smooth(roi, (w, h), BLUR_SIGMA * max(w, h), cv2.INTER_AREA)


def _smooth(image: np.ndarray, size: tuple[int, int], sigma: float, interpolation: int) -> np.ndarray:
    """`image` resized to `size` (width, height) and Gaussian-blurred by `sigma` px, on a 1/f copy: sigma/f ≈ 4 px
    looks the same and takes far fewer taps (a live frame's budget)."""
    w, h = size
    f = max(1, round(sigma / 4))
    small = cv2.resize(image, (max(1, w // f), max(1, h // f)), interpolation=interpolation)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class FaceDetector:
    """The bundled MediaPipe face detector on RGB images, on the whole image and on overlapping tiles.

    `model`: `short` (faces within ~2 m: webcams, portraits) or `full` (up to ~5 m: rooms, stages).
    The detector sees a 128×128 input, so a face must fill a good part of what it sees: `tile_levels`
    adds passes over tiles of 1/2, 1/4, … of the short side (50 % overlap); overlapping boxes are merged.
    """

    def __init__(self, model: str = "short", min_confidence: float = 0.5, tile_levels: int = 1) -> None:
        path = ASSETS / FACE_MODELS[check_face_model(model)]
        if not path.is_file():
            raise P3MError(f"bundled face model missing: {path}",
                           "reinstall p3m-stream, or run python model/assets/extract_assets.py")
        import_mediapipe()              # deferred: native runtime; its unused plotting helpers skipped
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                             running_mode=vision.RunningMode.IMAGE,
                                             min_detection_confidence=min_confidence)
        with quiet_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)
        self.model, self.tile_levels = model, tile_levels

    def __call__(self, rgb: np.ndarray) -> list[FaceBox]:
        """The faces in an H×W×3 uint8 RGB image, highest score first."""
        h, w = rgb.shape[:2]
        boxes = self._detect(rgb, 0, 0)
        for level in range(1, self.tile_levels + 1):
            tile = min(h, w) // 2**level
            if tile < 64:
                break
            for y in _starts(h, tile):
                for x in _starts(w, tile):
                    boxes += self._detect(rgb[y: y + tile, x: x + tile], x, y)
        return _merge(boxes)

    def _detect(self, rgb: np.ndarray, x_off: int, y_off: int) -> list[FaceBox]:
        import mediapipe as mp

        h, w = rgb.shape[:2]
        result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        boxes = []
        for d in result.detections:
            b = d.bounding_box
            x0, y0 = max(0, b.origin_x), max(0, b.origin_y)
            x1, y1 = min(w, b.origin_x + b.width), min(h, b.origin_y + b.height)
            if x1 > x0 and y1 > y0:
                boxes.append(FaceBox(x0 + x_off, y0 + y_off, x1 + x_off, y1 + y_off, float(d.categories[0].score)))
        return boxes

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _starts(length: int, tile: int) -> list[int]:
    """Tile origins along one axis: step tile/2, the last tile flush with the end."""
    starts = list(range(0, max(1, length - tile + 1), tile // 2))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _merge(boxes: list[FaceBox], min_overlap: float = 0.5) -> list[FaceBox]:
    """Greedy suppression: keep the best-scoring box of each group that overlaps (or nests; a face cut by
    a tile edge gives a part-box inside the whole one)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(overlap(b, k) < min_overlap for k in kept):
            kept.append(b)
    return kept
