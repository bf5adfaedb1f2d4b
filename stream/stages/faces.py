"""Face blurring, the privacy half of P3M: find faces in the camera frame and pixelate or blur them in the output.

`FaceBlur` is a stage like the others (`process(frame) -> frame`, `close()`), placed after compositing:
it detects on `frame.image` (the camera's picture, unaffected by the matte) and blurs the same boxes in
`frame.output`. Detection blinks (a missed frame, a turned head) must never show a face for a frame, so
`FaceTracker` pads each box, smooths it over time without ever shrinking it inside the newest detection,
and holds a box that was not seen again for `hold` frames, growing it a little each frame to cover motion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from model.errors import P3MError
from model.faces import FACE_MODELS, FaceDetector
from stream.frames import Frame

Box = tuple[float, float, float, float]          # x0, y0, x1, y1 in pixels (x1, y1 exclusive)
Detector = Callable[[np.ndarray], list[Box]]     # RGB image → face boxes
STYLES = ("pixelate", "gaussian")


class MediaPipeFaceDetector:
    """The bundled face detector as a `Detector`: float (x0, y0, x1, y1) boxes (~2 ms short range at 640×480)."""

    def __init__(self, model: str = "short", min_confidence: float = 0.5) -> None:
        self.model = model
        self._detector = FaceDetector(model, min_confidence, tile_levels=0)   # whole frame only: live budget

    def __call__(self, rgb: np.ndarray) -> list[Box]:
        return [(float(b.x0), float(b.y0), float(b.x1), float(b.y1)) for b in self._detector(rgb)]

    def close(self) -> None:
        self._detector.close()


@dataclass
class _Track:
    box: np.ndarray      # smoothed padded box, float [x0, y0, x1, y1]
    missed: int = 0      # frames since it was last detected


class FaceTracker:
    """Turns per-frame detections into the boxes to blur: padded, smoothed, held through detection blinks.

    `padding` widens each side by that fraction of the box (detector boxes stop at brows and chin);
    `smoothing` is the weight of the previous box (0: follow each detection); `hold` frames a lost face
    stays blurred, its box growing by `grow` of its size per missed frame.
    """

    def __init__(self, padding: float = 0.3, smoothing: float = 0.5, hold: int = 8, grow: float = 0.05,
                 match_iou: float = 0.1) -> None:
        self.padding, self.smoothing, self.hold, self.grow, self.match_iou = padding, smoothing, hold, grow, match_iou
        self.tracks: list[_Track] = []

    def update(self, detections: Sequence[Box], size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """The integer boxes (clipped to `size` = (width, height)) to blur in this frame."""
        padded = [self._pad(np.asarray(d, np.float64)) for d in detections]
        regions: list[np.ndarray] = []
        unmatched = list(range(len(self.tracks)))
        for box in padded:
            best = max(unmatched, key=lambda t: _iou(self.tracks[t].box, box), default=None)
            if best is not None and _iou(self.tracks[best].box, box) >= self.match_iou:
                unmatched.remove(best)
                track = self.tracks[best]
                track.box = self.smoothing * track.box + (1 - self.smoothing) * box
                track.missed = 0
                # The smoothed box lags a moving face: blur the union, so the newest detection is always inside.
                regions.append(_union(track.box, box))
            else:
                self.tracks.append(_Track(box))
                regions.append(box)
        for t in sorted(unmatched, reverse=True):
            track = self.tracks[t]
            track.missed += 1
            if track.missed > self.hold:
                del self.tracks[t]
                continue
            w, h = track.box[2] - track.box[0], track.box[3] - track.box[1]
            track.box = track.box + self.grow * np.array([-w, -h, w, h]) / 2
            regions.append(track.box)
        return [b for b in (_clip(r, size) for r in regions) if b is not None]

    def _pad(self, box: np.ndarray) -> np.ndarray:
        w, h = box[2] - box[0], box[3] - box[1]
        p = self.padding
        return box + np.array([-p * w, -p * h * 1.3, p * w, p * h * 0.7])   # more room above (hair, forehead)

    def reset(self) -> None:
        self.tracks.clear()


class FaceBlur:
    """Pixelates (`pixelate`) or Gaussian-blurs (`gaussian`) every face in `frame.output`, after compositing.

    Detects on `frame.image` with `detector` (default: the bundled MediaPipe model, `model` short|full,
    which `close()` closes);
    boxes are tracked by a `FaceTracker`. Pixels outside the boxes are untouched. Boxes found are put in
    `frame.extras["faces"]`.
    """

    name = "faces"

    def __init__(self, style: str = "pixelate", model: str = "short", *, detector: Detector | None = None,
                 tracker: FaceTracker | None = None, blocks: int = 8, min_confidence: float = 0.5) -> None:
        if style not in STYLES:
            raise P3MError(f"unknown face blur style {style!r}", f"use one of: {', '.join(STYLES)}")
        if model not in FACE_MODELS:
            raise P3MError(f"unknown face model {model!r}", f"use one of: {', '.join(FACE_MODELS)}")
        self.style, self.blocks = style, blocks
        self._owns_detector = detector is None        # a detector given to us is the caller's to close
        self.detector: Detector = detector or MediaPipeFaceDetector(model, min_confidence)
        self.tracker = tracker or FaceTracker()

    def process(self, frame: Frame) -> Frame:
        height, width = frame.image.shape[:2]
        boxes = self.tracker.update(self.detector(frame.image), (width, height))
        frame.extras["faces"] = boxes
        if not boxes:
            return frame
        output = frame.output if frame.output is not None else frame.image
        if not output.flags.writeable or np.shares_memory(output, frame.image):
            output = output.copy()        # never write into the camera's image: other stages may still read it
        for box in boxes:
            blur_region(output, box, self.style, self.blocks)
        frame.output = output
        return frame

    def close(self) -> None:
        close = getattr(self.detector, "close", None)
        if self._owns_detector and close is not None:
            close()


def blur_region(image: np.ndarray, box: tuple[int, int, int, int], style: str = "pixelate", blocks: int = 8) -> None:
    """Blur `image[y0:y1, x0:x1]` in place (RGB or RGBA; the alpha channel is left as it is).

    `pixelate`: a mosaic of `blocks` cells across the box's long side, cell edges softened (hard cell
    edges are fine detail of their own: on a face they raise the Laplacian variance, sharp → +15-70 %).
    `gaussian`: sigma of a fifth of the box's long side (at an eighth, the detector still took the blurred
    head and shoulders for a face now and then).
    """
    x0, y0, x1, y1 = box
    roi = image[y0:y1, x0:x1, :3]
    h, w = roi.shape[:2]
    if h < 2 or w < 2:
        return
    cell = max(w, h) / blocks
    if style == "pixelate":
        small = cv2.resize(roi, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
        mosaic = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        roi[...] = cv2.GaussianBlur(mosaic, (0, 0), 0.25 * cell)
    else:
        sigma = max(w, h) / 5
        f = max(1, int(sigma // 4))       # blur a 1/f copy (sigma/f ≈ 4 px): same look, far fewer taps
        small = cv2.resize(roi, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REPLICATE)
        roi[...] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def _clip(box: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Integer box covering `box` (rounded outwards), clipped to the frame; None when empty."""
    width, height = size
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None
