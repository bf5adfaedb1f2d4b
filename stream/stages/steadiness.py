"""Where the picture stands still, the matte does too: the flicker a viewer sees is the alpha changing where
nothing moved (an edge shimmering on a wall, a faint false positive coming and going on a fence)."""
from __future__ import annotations

import cv2
import numpy as np

from model.evaluation.temporal import STILL_BELOW, STILL_WINDOW
from stream.frames import Frame

_STILL_SUM = STILL_BELOW * 255 * STILL_WINDOW * STILL_WINDOW    # the window's summed change, at the threshold


class StillHold:
    """On the full-resolution alpha, after upsampling: where the frame's 5×5 neighbourhood changed by less than
    2/255 since the previous frame (`still_mask`) and the new alpha is within `release` of the held one,
    out = prev + (1 − `strength`)·(new − prev); elsewhere the new alpha as it is, so a moving edge (its pixels
    change) does not trail. A wrong alpha on a still picture still gives way, by a `1 − strength` share a frame.
    `release` bounds the lag where a move does not show in the pixels (a flat surface sliding, a block the
    encoder copied): without it those kept an old alpha and streaked. At full size, not the model's: the
    upsampling's own shimmer (the guide's sensor noise at the edges) is held too (bench/RESULTS.md)."""

    name = "steadiness"

    def __init__(self, strength: float = 0.9, release: float = 0.1) -> None:
        self.strength, self.release = strength, release
        self.reset()

    def process(self, frame: Frame) -> Frame:
        frame.alpha = self.hold(frame.alpha, frame.image)
        return frame

    def hold(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The alpha of `image` (its size) held where the picture stood still; a new array."""
        out = np.array(alpha, np.float32)
        prev = self._prev
        if prev is not None and prev[0].shape == out.shape and prev[1].shape == image.shape == (*out.shape, 3):
            held = still_mask(image, prev[1])
            held &= np.less(cv2.absdiff(out, prev[0]), self.release).view(np.uint8)
            cv2.accumulateWeighted(prev[0], out, self.strength, mask=held)
        self._prev = (out, image)
        return out

    def reset(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        self.reset()


def still_mask(frame: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """uint8 H×W, nonzero where the 5×5 neighbourhood's change since `previous` is below 2/255: the flicker metric's
    test (model/evaluation/temporal.py still_pixels) with the channels' changes weighted as luma weighs them, in
    uint8 steps, for a sixth of its time at 720p."""
    change = cv2.cvtColor(cv2.absdiff(frame, previous), cv2.COLOR_RGB2GRAY)
    window = cv2.boxFilter(change, cv2.CV_16U, (STILL_WINDOW, STILL_WINDOW), normalize=False)
    return np.less(window, _STILL_SUM).view(np.uint8)      # not cv2.compare: it misreads a 1×1 frame's scalar
