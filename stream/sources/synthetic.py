"""A synthetic camera for tests and benchmarks: a real portrait drifting over a backdrop, each frame
stamped with its index."""
from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from stream.frames import Frame
from stream.sources.live import LIVE_TIME_BASE, LiveSource


class SyntheticCamera(LiveSource):
    """A fake camera: a real portrait (scikit-image's astronaut) drifting over a backdrop, at exactly `fps`.

    `frames` (or `seconds`) bounds the stream; `gaps` {index: seconds} stalls before that frame (a camera
    that goes away). Each image carries its index in the top-left pixels (`read_stamp`), to check order.
    """

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 30.0, *, frames: int | None = None,
                 seconds: float | None = None, gaps: dict[int, float] | None = None, variants: int = 30) -> None:
        self.path = "synthetic"
        self.width, self.height = size
        self.fps = Fraction(fps).limit_denominator(1001)
        self.frames = frames if frames is not None else (round(seconds * fps) if seconds is not None else None)
        self.frame_count = self.frames
        self.gaps = dict(gaps or {})
        self._images = _portrait_frames(size, variants)

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        interval, late = 1 / float(self.fps), 0.0
        index = 0
        while self.frames is None or index < self.frames:
            late += self.gaps.get(index, 0.0)
            if not self._sleep_until(start + late + index * interval):
                return
            image = self._images[index % len(self._images)].copy()
            stamp_index(image, index)
            now = time.perf_counter()
            yield Frame(index=index, image=image, pts=round((now - start) * 1000), time_base=LIVE_TIME_BASE,
                        captured_at=now)
            index += 1


def stamp_index(image: np.ndarray, index: int) -> None:
    """Write `index` into the first two pixels (base 256), in place."""
    image[0, 0] = (index % 256, index // 256 % 256, index // 65536 % 256)
    image[0, 1] = (255, 0, 255)


def read_stamp(image: np.ndarray) -> int:
    """The index `stamp_index` wrote (survives compositing where alpha is 1)."""
    r, g, b = (int(v) for v in image[0, 0, :3])
    return r + 256 * g + 65536 * b


def _portrait_frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    from stream.sources.synthetic import portrait

    width, height = size
    side = min(width, height)
    person = cv2.resize(portrait(), (side, side), interpolation=cv2.INTER_AREA)
    backdrop = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    images = []
    for i in range(count):
        x = int((width - side) * (0.5 + 0.5 * np.sin(2 * np.pi * i / count)))
        image = backdrop.copy()
        image[height - side:, x:x + side] = person
        images.append(image)
    return images


def portrait() -> np.ndarray:
    """scikit-image's `data.astronaut()`: a real, unblurred 512×512 RGB portrait shipped in its wheel."""
    from skimage import data

    return data.astronaut()
