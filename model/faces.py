"""Face detection with the bundled MediaPipe models: for privacy, in live/offline video (stream/faces.py)
and in training data (model/ppt.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.bundled import ASSETS, import_mediapipe, quiet_native_stderr
from model.errors import P3MError

FACE_MODELS = {"short": "face_detection_short_range.tflite",           # faces within ~2 m: webcams
               "full": "face_detection_full_range_sparse.tflite"}      # up to ~5 m: rooms, stages


@dataclass(frozen=True)
class FaceBox:
    """A detected face: pixel box [x0, x1) × [y0, y1) and the detector's score."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float

    def padded(self, padding: float, height: int, width: int) -> "FaceBox":
        """The box grown by `padding` × its size on every side, clipped to the image."""
        dx, dy = round((self.x1 - self.x0) * padding), round((self.y1 - self.y0) * padding)
        return FaceBox(max(0, self.x0 - dx), max(0, self.y0 - dy), min(width, self.x1 + dx),
                       min(height, self.y1 + dy), self.score)

    def overlap(self, other: "FaceBox") -> float:
        """Intersection over the smaller box's area: 1 when one box lies inside the other."""
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        smaller = min((self.x1 - self.x0) * (self.y1 - self.y0), (other.x1 - other.x0) * (other.y1 - other.y0))
        return ix * iy / smaller if smaller else 0.0


class FaceDetector:
    """The bundled MediaPipe face detector on RGB images, on the whole image and on overlapping tiles.

    `model`: `short` (faces within ~2 m: webcams, portraits) or `full` (up to ~5 m: rooms, stages).
    The detector sees a 128×128 input, so a face must fill a good part of what it sees: `tile_levels`
    adds passes over tiles of 1/2, 1/4, … of the short side (50 % overlap); overlapping boxes are merged.
    """

    def __init__(self, model: str = "short", min_confidence: float = 0.5, tile_levels: int = 1) -> None:
        if model not in FACE_MODELS:
            raise P3MError(f"unknown face model {model!r}", f"use one of: {', '.join(FACE_MODELS)}")
        path = ASSETS / FACE_MODELS[model]
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

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




def _starts(length: int, tile: int) -> list[int]:
    """Tile origins along one axis: step tile/2, the last tile flush with the end."""
    starts = list(range(0, max(1, length - tile + 1), tile // 2))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _merge(boxes: list[FaceBox], overlap: float = 0.5) -> list[FaceBox]:
    """Greedy suppression: keep the best-scoring box of each group that overlaps (or nests; a face cut by
    a tile edge gives a part-box inside the whole one)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(b.overlap(k) < overlap for k in kept):
            kept.append(b)
    return kept
