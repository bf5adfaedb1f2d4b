"""Face blurring, the privacy half of P3M: find faces in the camera frame and hide them in the output (model/faces.py).

`FaceBlur` is a stage like the others (`process(frame) -> frame`, `close()`), placed after compositing:
it detects on `frame.image` (the camera's picture, unaffected by the matte) and blurs the same boxes in
`frame.output`. Detection blinks (a missed frame, a turned head) must never show a face for a frame, so
`FaceTracker` pads each box, smooths it over time without ever shrinking it inside the newest detection,
and holds a box that was not seen again for `hold` frames, growing it a little each frame to cover motion.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.faces import DEFAULT_STYLE, Box, FaceDetector, check_face_model, check_style, clip, iou, obscure, pad, union
from stream.frames import Frame

Detector = Callable[[np.ndarray], Sequence[Box]]     # RGB image → face boxes (x0, y0, x1, y1, …)


@dataclass
class _Track:
    box: tuple[float, float, float, float]     # smoothed padded box
    missed: int = 0                            # frames since it was last detected


class FaceTracker:
    """Turns per-frame detections into the boxes to blur: padded, smoothed, held through detection blinks.

    `padding` widens each side by that fraction of the box, with more room above (detector boxes stop at brows
    and chin); `smoothing` is the weight of the previous box (0: follow each detection); `hold` frames a lost
    face stays blurred, its box growing by `grow` of its size per missed frame.
    """

    def __init__(self, padding: float = 0.3, smoothing: float = 0.5, hold: int = 8, grow: float = 0.05,
                 match_iou: float = 0.1) -> None:
        self.padding, self.smoothing, self.hold, self.grow, self.match_iou = padding, smoothing, hold, grow, match_iou
        self.tracks: list[_Track] = []

    def update(self, detections: Sequence[Box], size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """The integer boxes (clipped to `size` = (width, height)) to blur in this frame."""
        padded = [pad(d, self.padding, lift=0.3) for d in detections]   # lifted: hair and forehead are above
        regions: list[Box] = []
        unmatched = list(range(len(self.tracks)))
        for box in padded:
            best = max(unmatched, key=lambda t: iou(self.tracks[t].box, box), default=None)
            if best is not None and iou(self.tracks[best].box, box) >= self.match_iou:
                unmatched.remove(best)
                track = self.tracks[best]
                track.box = _blend(track.box, box, self.smoothing)
                track.missed = 0
                # The smoothed box lags a moving face: blur the union, so the newest detection is always inside.
                regions.append(union(track.box, box))
            else:
                self.tracks.append(_Track(box))
                regions.append(box)
        for t in sorted(unmatched, reverse=True):
            track = self.tracks[t]
            track.missed += 1
            if track.missed > self.hold:
                del self.tracks[t]
                continue
            track.box = pad(track.box, self.grow / 2)
            regions.append(track.box)
        return [b for b in (clip(r, size) for r in regions) if b is not None]

    def reset(self) -> None:
        self.tracks.clear()


class FaceBlur:
    """Hides every face in `frame.output` with `model.faces.obscure` (`pixelate` or `gaussian`), after compositing.

    Detects on `frame.image` with `detector` (default: the bundled MediaPipe model, `model` short|full, on the
    whole frame, which `close()` closes); boxes are tracked by a `FaceTracker`. Pixels outside the boxes are
    untouched. Boxes found are put in `frame.extras["faces"]`.
    """

    name = "faces"

    def __init__(self, style: str = DEFAULT_STYLE, model: str = "short", *, detector: Detector | None = None,
                 tracker: FaceTracker | None = None, min_confidence: float = 0.5) -> None:
        check_style(style)
        check_face_model(model)
        self.style = style
        self._owns_detector = detector is None        # a detector given to us is the caller's to close
        # Whole frame only (no tiles): the live budget.
        self.detector: Detector = detector or FaceDetector(model, min_confidence, tile_levels=0)
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
        frame.output = obscure(output, boxes, self.style)
        return frame

    def close(self) -> None:
        close = getattr(self.detector, "close", None)
        if self._owns_detector and close is not None:
            close()


def _blend(old: Box, new: Box, weight: float) -> tuple[float, float, float, float]:
    """`weight` × `old` + (1 − `weight`) × `new`, corner by corner."""
    x0, y0, x1, y1 = (weight * a + (1 - weight) * b for a, b in zip(old[:4], new[:4]))
    return x0, y0, x1, y1
