"""Subject selection over frames: the regions of each matte (model/subjects.py) that belong to the subject the
previous frames showed; a new region must persist to appear, and the subject does not vanish for a frame."""
from __future__ import annotations

import cv2
import numpy as np

from model.subjects import Regions, check_mode, find_regions
from stream.frames import Frame

STEP = 2        # frames are compared on every STEP-th pixel: the bookkeeping's cost / 4, regions as found


class SubjectSelection:
    """On the model-resolution alpha (between the model and the smoother): `main` keeps the regions that
    overlap the subject shown in the previous frame (the largest region on a first frame or after a cut),
    `all` keeps those and any other region seen in `persist` frames in a row, so a false positive that blinks
    never reaches the output. When the shown subject disappears, or loses most of its alpha at once, the
    previous frame's alpha stands in for at most `hold` frames."""

    name = "subjects"

    def __init__(self, mode: str = "main", persist: int = 3, hold: int = 3, cut_threshold: float = 0.2) -> None:
        self.mode = check_mode(mode)
        self.persist, self.hold, self.cut_threshold = persist, hold, cut_threshold
        self.reset()

    def process(self, frame: Frame) -> Frame:
        frame.alpha = self.select(frame.alpha, frame.extras.get("matting", frame.image))
        return frame

    def select(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The subject's part of the H×W alpha `alpha` of the frame `image` (any size: only a thumbnail of it
        is used, to notice cuts)."""
        thumb = _thumbnail(image)
        if self._last is None or self._last.shape != alpha.shape or self._is_cut(thumb):
            self.reset()
        self._thumb = thumb
        regions = find_regions(alpha)
        ages = self._ages(regions)
        kept = self._kept(regions, ages)
        area = int(regions.area[kept].sum())
        if self._last is not None and area < 0.3 * self._last_area and self._held < self.hold:
            self._held += 1                  # the subject vanished or collapsed in one frame: hold the last one
            return self._last.copy()
        out = regions.keep(alpha, kept)
        self._held = 0
        self._shown = regions.mask(kept)[::STEP, ::STEP]
        self._last, self._last_area = out, area
        return out

    def _ages(self, regions: Regions) -> np.ndarray:
        """Per label (index 0 unused), the frames in a row (up to `persist`) it has been there: one more than
        the oldest region of the previous frame it overlaps."""
        top = self.persist
        ages = np.ones(regions.count + 1, np.int64)
        if self._age_map is not None and regions.count:
            pairs = np.bincount((regions.labels[::STEP, ::STEP] * (top + 1) + self._age_map).ravel(),
                                minlength=(regions.count + 1) * (top + 1)).reshape(-1, top + 1)
            ages += top - np.argmax(pairs[:, ::-1] > 0, axis=1)      # the oldest age each label overlaps
        ages = np.minimum(ages, top)
        ages[0] = 0
        self._age_map = ages.astype(np.uint8)[regions.labels[::STEP, ::STEP]]
        return ages

    def _kept(self, regions: Regions, ages: np.ndarray) -> np.ndarray:
        """The labels to show."""
        if regions.count == 0:
            return np.zeros(0, int)
        if self._last is None:                           # a first frame: no history to judge by
            return np.arange(1, regions.count + 1) if self.mode == "all" else np.array([regions.largest()])
        established = regions.overlapping(self._shown, STEP)
        lasting = np.flatnonzero(ages[1:] >= self.persist) + 1
        if self.mode == "all":
            return np.union1d(established, lasting)
        if len(established):
            return established
        subject = regions.largest(lasting)               # the subject is gone: a lasting region takes over
        return np.zeros(0, int) if subject is None else np.array([subject])

    def _is_cut(self, thumb: np.ndarray) -> bool:
        if self._thumb is None or self._thumb.shape != thumb.shape:
            return True
        return float(cv2.absdiff(self._thumb, thumb).mean()) / 255.0 > self.cut_threshold

    def reset(self) -> None:
        """Forget the previous frames (a cut, a size change, a seek)."""
        self._last: np.ndarray | None = None
        self._last_area = 0
        self._shown: np.ndarray | None = None
        self._age_map: np.ndarray | None = None
        self._thumb: np.ndarray | None = None
        self._held = 0

    def close(self) -> None:
        self.reset()


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A 64×36 gray thumbnail (every step-th pixel first: cheap, as the smoother's cut check)."""
    step = max(1, min(image.shape[0] // 72, image.shape[1] // 128))
    return cv2.cvtColor(cv2.resize(image[::step, ::step], (64, 36), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2GRAY)
