"""Whether the matte found a person: frames where it found none (or only a tiny one) are counted, so a job can
warn instead of silently writing a video of background."""
from __future__ import annotations

import threading

import numpy as np

TINY_SHARE = 0.005      # a person covering under 0.5 % of the picture is as good as none (a speck, noise)
MOST = 0.5              # warn when more than this share of the frames had none


class PersonPresence:
    """Counts the frames whose alpha (at any resolution) covers less than TINY_SHARE of the picture."""

    def __init__(self) -> None:
        self.frames = self.empty = 0
        self._lock = threading.Lock()      # a split matting stage may count from two threads in turn

    def add(self, alpha: np.ndarray) -> None:
        empty = float(np.count_nonzero(alpha > 0.5)) < TINY_SHARE * alpha.size
        with self._lock:
            self.frames += 1
            self.empty += empty

    def warning(self) -> str | None:
        """One warning line when most frames had no person, else None."""
        if not self.frames or self.empty <= MOST * self.frames:
            return None
        return (f"the matte found no person (or only one under {100 * TINY_SHARE:g} % of the picture) in "
                f"{self.empty} of {self.frames} frames: is anyone in the picture? Check the output by eye; "
                "another --model may find them")
