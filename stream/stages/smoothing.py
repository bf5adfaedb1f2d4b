"""Temporal smoothing of the alpha: uncertain pixels averaged over frames, confident ones taken at once."""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.errors import P3MError
from stream.frames import Frame

if TYPE_CHECKING:                   # torch is imported where a path uses it: the default CPU job needs none
    import torch

    Alpha = np.ndarray | torch.Tensor   # an H×W alpha: numpy on the CPU path, a tensor on a device path


class TemporalSmoother:
    """Per pixel out = w·prev + (1 − w)·new with w = strength·(1 − |2·new − 1|): confident pixels take the new
    alpha at once (a moving silhouette does not trail), uncertain ones average over frames (less flicker).
    Resets on a size change or a scene cut (64×36 gray thumbnails differ by more than `cut_threshold`).
    """

    def __init__(self, strength: float = 0.5, enabled: bool = True, cut_threshold: float = 0.2) -> None:
        if not 0.0 <= strength <= 1.0:
            raise P3MError(f"smoothing strength {strength} is outside [0, 1]",
                           "0 follows each frame, 1 blends uncertain pixels the most")
        self.strength, self.enabled = strength, enabled
        self.cut_threshold = cut_threshold
        self._prev: Alpha | None = None
        self._thumb: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """False when smoothing is off (or has no strength): frames pass unchanged."""
        return self.enabled and self.strength > 0.0

    def process(self, frame: Frame) -> Frame:
        if self.active:
            frame.alpha = self.smooth(frame.alpha, frame.image)
        return frame

    def smooth(self, new: Alpha, image: np.ndarray) -> Alpha:
        """The H×W alpha `new` (a numpy array, or a tensor on any device) of the frame `image`, blended with
        the previous one. Returns `new` itself on a first frame or a cut, and keeps what it returns: do not
        change it later."""
        step = max(1, min(image.shape[0] // 72, image.shape[1] // 128))   # every step-th pixel: cheap, as good
        thumb = cv2.cvtColor(cv2.resize(image[::step, ::step], (64, 36), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_RGB2GRAY)
        prev, last_thumb = self._prev, self._thumb
        self._thumb = thumb
        same_kind = type(prev) is type(new) and getattr(prev, "device", None) == getattr(new, "device", None)
        if prev is None or not same_kind or prev.shape != new.shape or self._is_cut(last_thumb, thumb):
            self._prev = new
            return new
        # An exponent on the uncertainty, or a gate on |new − prev|, only moved along the same lag/flicker
        # trade-off on synthetic clips, so the weight stays linear. The same arithmetic serves numpy arrays
        # (the CPU path, at the model's resolution) and torch tensors (the device path).
        weight = (1.0 - 2.0 * abs(new - 0.5)) * self.strength
        out = new + (prev - new) * weight
        self._prev = out
        return out

    def _is_cut(self, last: np.ndarray | None, thumb: np.ndarray) -> bool:
        if last is None or last.shape != thumb.shape:
            return True
        return float(cv2.absdiff(last, thumb).mean()) / 255.0 > self.cut_threshold

    def reset(self) -> None:
        """Forget the previous frame (e.g. after a seek)."""
        self._prev = self._thumb = None

    def close(self) -> None:
        self.reset()
