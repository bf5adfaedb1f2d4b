"""Where the picture stands still, the matte does too: the flicker a viewer sees is the alpha changing where
nothing moved (false-positive regions blinking on a fence, an edge shimmering on a wall)."""
from __future__ import annotations

import cv2
import numpy as np

from model.evaluation.temporal import still_pixels
from stream.frames import Frame


class StillHold:
    """On the model-resolution alpha: where the frame's 5×5 neighbourhood changed by less than 2/255 since the
    previous frame (model/evaluation/temporal.py), out = prev + (1 − `strength`)·(new − prev); elsewhere the
    new alpha as it is, so a moving edge (its pixels change) does not trail. A wrong alpha on a still picture
    still gives way, by a `1 − strength` share a frame."""

    name = "steadiness"

    def __init__(self, strength: float = 0.9) -> None:
        self.strength = strength
        self.reset()

    def process(self, frame: Frame) -> Frame:
        frame.alpha = self.hold(frame.alpha, frame.extras.get("matting", frame.image))
        return frame

    def hold(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The alpha of `image` (at the alpha's size) held where the picture stood still."""
        prev = self._prev
        if prev is None or prev[0].shape != alpha.shape or prev[1].shape != image.shape or \
                image.shape[:2] != alpha.shape:
            self._prev = (alpha, image)
            return alpha
        still = still_pixels(image, prev[1])
        out = np.array(alpha, np.float32)
        np.copyto(out, cv2.addWeighted(prev[0], self.strength, out, 1.0 - self.strength, 0.0), where=still)
        self._prev = (out, image)
        return out

    def reset(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        self.reset()
