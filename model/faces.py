"""Faces, for privacy: the bundled MediaPipe detectors, face-box geometry, and `obscure`, the one way a face is
hidden (prepare-ppt's training images; the cut-out's and live's frames through stream/stages/faces.py).

Strong enough means: after `obscure` on a face box padded by at least a quarter of its size, neither bundled
detector (whole image and tiles of 1/2 and 1/4) scores the face (a box with IoU ≥ 0.3) at 0.4 or more, in any
style, for faces 24 to 400 px wide (the detectors' own threshold is 0.5), and the box's detail (Laplacian
variance) falls by 90 % or more (bench/face_obscuring.py, tests/model/test_faces.py).
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
FACE_FINDERS = ("both", *FACE_MODELS)     # --face-model: both detectors, or one of them alone
INPUT_SIZE = {"short": 128, "full": 192}  # the square each detector sees; a region is shrunk to it here
# The share of a square region's side a face must span to be found at ≥ 0.8 (bench/RESULTS.md, the astronaut):
# regions are sized from it, so a face of any size lands in one the detector sees well.
FACE_SHARE = {"short": (0.13, 0.8), "full": (0.065, 0.8)}

# The one table of style names: `p3m cutout/live --blur-style` says gaussian where `p3m prepare-ppt --style` says blur.
STYLE_NAMES = {"pixelate": "pixelate", "gaussian": "blur", "blur": "blur", "fill": "fill"}
STYLES = ("pixelate", "gaussian", "fill")  # cut-out and live: --blur-style, the config's blur_style
PPT_STYLES = ("blur", "pixelate", "fill")  # prepare-ppt: --style
DEFAULT_STYLE = "fill"                    # every command's default: the lowest detector scores (bench/RESULTS.md)
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


def check_face_finder(name: str) -> str:
    """`name` if it names a FaceFinder's detectors (both, short, full), else a P3MError."""
    if name not in FACE_FINDERS:
        raise P3MError(f"unknown face model {name!r}", f"use one of: {', '.join(FACE_FINDERS)}")
    return name


def check_style(style: str) -> str:
    """The style `style` names (pixelate or blur; gaussian is blur), else a P3MError."""
    if style not in STYLE_NAMES:
        raise P3MError(f"unknown face blur style {style!r}", "use pixelate, fill, or gaussian (also called blur)")
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
    fine detail of their own). `blur` (or `gaussian`): sigma of BLUR_SIGMA × the long side. `fill`: the box's
    mean colour. Boxes are clipped here.
    """
    kind = check_style(style)
    height, width = image.shape[:2]
    for box in boxes:
        region = clip(box, (width, height))
        if region is None:
            continue
        x0, y0, x1, y1 = region
        roi = image[y0:y1, x0:x1, :3]
        roi[...] = _pixelate(roi) if kind == "pixelate" else _blur(roi) if kind == "blur" else _fill(roi)
    return image


def _pixelate(roi: np.ndarray) -> np.ndarray:
    h, w = roi.shape[:2]
    cell = max(w, h) / PIXELATE_CELLS
    cells = cv2.resize(roi, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
    return _smooth(cells, (w, h), 0.25 * cell, cv2.INTER_NEAREST)


def _blur(roi: np.ndarray) -> np.ndarray:
    h, w = roi.shape[:2]
    return _smooth(roi, (w, h), BLUR_SIGMA * max(w, h), cv2.INTER_AREA)


def _fill(roi: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.mean(roi)[: roi.shape[2]], np.float64).round().astype(roi.dtype)


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
        self.model, self.tile_levels = model, tile_levels
        with quiet_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)
            self._detect(np.zeros((64, 64, 3), np.uint8), 0, 0)   # LiteRT warns at a process's first inference

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
        return merge(boxes)

    def in_region(self, rgb: np.ndarray, region: Square) -> list[FaceBox]:
        """The faces in one square `region` of `rgb` (clipped to the image), shrunk here to what the detector
        sees (cheaper than MediaPipe's own resize of a large crop); boxes in `rgb`'s pixels."""
        h, w = rgb.shape[:2]
        x0, y0 = max(0, int(region.x)), max(0, int(region.y))
        x1, y1 = min(w, int(region.x + region.side)), min(h, int(region.y + region.side))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        crop = rgb[y0:y1, x0:x1]
        f = min(1.0, INPUT_SIZE[self.model] / max(x1 - x0, y1 - y0))
        if f < 1.0:
            crop = cv2.resize(crop, (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                              interpolation=cv2.INTER_AREA)
        sx, sy = (x1 - x0) / crop.shape[1], (y1 - y0) / crop.shape[0]
        return [FaceBox(round(x0 + b.x0 * sx), round(y0 + b.y0 * sy), round(x0 + b.x1 * sx), round(y0 + b.y1 * sy),
                        b.score) for b in self._detect(crop, 0, 0)]

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
            with quiet_native_stderr():          # "DestroyAccelerator"
                self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Job = tuple[str, "Square"]               # (detector model, square region): one detector call


class FaceFinder:
    """The bundled detectors on the regions of a frame: a whole sweep (`scan`), part of one (`find`), or the
    square around a known face (`refind`). `models`: both (short range on the level-0 squares and around known
    faces, full range on every sweep square) or one of them alone. Boxes below `min_confidence` are dropped,
    except around a known face, where `track_confidence` is enough (a turning head scores lower).
    """

    def __init__(self, models: str = "both", min_confidence: float = 0.5, track_confidence: float = 0.3,
                 min_face: float = 24.0) -> None:
        names = tuple(FACE_MODELS) if check_face_finder(models) == "both" else (models,)
        self.min_confidence, self.track_confidence, self.min_face = min_confidence, track_confidence, min_face
        self.detectors: dict[str, FaceDetector] = {}
        try:
            for name in names:
                self.detectors[name] = FaceDetector(name, min(min_confidence, track_confidence), tile_levels=0)
        except BaseException:
            self.close()
            raise
        self._plans: dict[tuple[int, int], list[Job]] = {}

    def plan(self, size: tuple[int, int]) -> list[Job]:
        """Every detector call of one sweep of a `size` (width, height) frame, the level-0 squares first."""
        if size not in self._plans:
            first, last = ("short", "full") if len(self.detectors) == 2 else (next(iter(self.detectors)),) * 2
            level0 = sweep(size, first, min_face=float("inf"))
            jobs = [(first, sq) for sq in level0]
            jobs += [(last, sq) for sq in sweep(size, last, self.min_face) if last != first or sq not in level0]
            self._plans[size] = jobs
        return self._plans[size]

    def find(self, rgb: np.ndarray, jobs: Iterable[Job]) -> list[FaceBox]:
        """The faces (≥ min_confidence) the given detector calls find, merged."""
        found = [b for model, sq in jobs for b in self.detectors[model].in_region(rgb, sq)]
        return merge(b for b in found if b.score >= self.min_confidence)

    def scan(self, rgb: np.ndarray) -> list[FaceBox]:
        """The faces a whole sweep finds (every size from min_face up)."""
        return self.find(rgb, self.plan((rgb.shape[1], rgb.shape[0])))

    def refind(self, rgb: np.ndarray, box: Box, missed: int = 0) -> FaceBox | None:
        """The face at `box` (≥ track_confidence, overlapping it), looked for in the square around it: the
        short-range detector first, full range if that misses; None when neither finds it. `missed` > 0 (frames
        the face already went unfound): one detector a call, in turn, so each still looks every other frame."""
        square = around(box, (rgb.shape[1], rgb.shape[0]))
        detectors = list(self.detectors.values())
        if missed > 0:
            detectors = [detectors[(missed - 1) % len(detectors)]]
        for detector in detectors:
            found = [b for b in detector.in_region(rgb, square)
                     if b.score >= self.track_confidence and overlap(b, box) > 0.3]
            if found:
                return max(found, key=lambda b: (iou(b, box), b.score))
        return None

    def close(self) -> None:
        for detector in self.detectors.values():
            detector.close()

    def __enter__(self) -> FaceFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Square(NamedTuple):
    """A square region of a frame a detector looks at: origin (x, y) and side, in pixels."""

    x: float
    y: float
    side: float


def around(box: Box, size: tuple[int, int], context: float = 2.5) -> Square:
    """The square a detector re-finds a known face in: centred on `box`, `context` × its long side (the face then
    spans 1/context of it, well inside both detectors' range), moved inside the frame where it fits."""
    width, height = size
    side = max(48.0, context * max(box[2] - box[0], box[3] - box[1]))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = min(max(cx - side / 2, 0.0), max(width - side, 0.0))
    y = min(max(cy - side / 2, 0.0), max(height - side, 0.0))
    return Square(x, y, side)


def sweep(size: tuple[int, int], model: str, min_face: float = 24.0) -> list[Square]:
    """The squares that together find every face from `min_face` px to the frame's short side with `model`.

    Level 0: squares of the short side across the long one (a non-square frame shown whole is squeezed into the
    detector's square, which loses mid-size faces). Each next level halves the side, until a `min_face` face
    spans FACE_SHARE's lower bound of it; squares overlap by a third, so a face up to a third of a side lies
    whole inside one.
    """
    width, height = size
    low = FACE_SHARE[model][0]
    side = float(min(width, height))
    squares: list[Square] = []
    while True:
        step = side / 2 if side == min(width, height) else side * 2 / 3
        squares += [Square(x, y, side) for y in _starts(height, int(side), int(step))
                    for x in _starts(width, int(side), int(step))]
        if low * side <= min_face or side / 2 < 48:
            return squares
        side /= 2


def _starts(length: int, tile: int, step: int | None = None) -> list[int]:
    """Tile origins along one axis: `step` apart (default tile/2), the last tile flush with the end."""
    starts = list(range(0, max(1, length - tile + 1), max(1, step or tile // 2)))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def merge(boxes: Iterable[FaceBox], min_overlap: float = 0.5) -> list[FaceBox]:
    """Greedy suppression: keep the best-scoring box of each group that overlaps (or nests; a face cut by
    a tile edge gives a part-box inside the whole one)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(overlap(b, k) < min_overlap for k in kept):
            kept.append(b)
    return kept
