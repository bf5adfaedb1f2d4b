"""Matte tuning, as OBS's background removal filter offers it: a threshold, erosion and dilation, feathering
(on a full-resolution alpha), and spill suppression (on the colours the person is composited with, where the
input was shot before a green or blue screen). numpy and OpenCV; every default leaves the matte as it is."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPILL = ("off", "green", "blue")
SPILL_CHANNELS = {"green": (1, 0, 2), "blue": (2, 0, 1)}     # the keyed channel, then the two it is limited by


@dataclass(frozen=True)
class MatteTuning:
    """What to do to each alpha, in this order.

    Args:
        threshold: alpha below it becomes 0; above it is stretched back to [0, 1], so edges stay soft.
        erode: pixels the matte shrinks by (removes a fringe of the old background; with `dilate`, specks).
        dilate: pixels the matte grows by, after `erode` (fills small holes; with `erode`, keeps the size).
        feather: pixels each side of an edge that it is softened over (a Gaussian blur).
    """

    threshold: float = 0.0
    erode: int = 0
    dilate: int = 0
    feather: int = 0

    @property
    def active(self) -> bool:
        """True when `apply` changes anything."""
        return bool(self.threshold or self.erode or self.dilate or self.feather)

    def apply(self, alpha: np.ndarray) -> np.ndarray:
        """The tuned copy of an H×W float32 alpha in [0, 1]."""
        if self.threshold:
            alpha = threshold(alpha, self.threshold)
        if self.erode:
            alpha = cv2.erode(alpha, _disc(self.erode))
        if self.dilate:
            alpha = cv2.dilate(alpha, _disc(self.dilate))
        if self.feather:
            alpha = feather(alpha, self.feather)
        return alpha


def threshold(alpha: np.ndarray, t: float) -> np.ndarray:
    """0 below `t`, (alpha − t) / (1 − t) above: no step at `t`, 1 stays 1."""
    return np.clip((alpha - t) / (1.0 - t), 0.0, 1.0).astype(np.float32)


def feather(alpha: np.ndarray, px: int) -> np.ndarray:
    """The alpha blurred so that a hard edge ramps over about `px` pixels each side of it."""
    return cv2.GaussianBlur(alpha, (2 * px + 1, 2 * px + 1), sigmaX=px / 2, borderType=cv2.BORDER_REPLICATE)


def suppress_spill(rgb: np.ndarray, spill: str) -> np.ndarray:
    """H×W×3 uint8 RGB with the keyed colour's light that bounced onto the person taken out: green (or blue)
    limited to the larger of the other two channels, which leaves colours without a green (blue) cast alone."""
    if spill == "off":
        return rgb
    keyed, a, b = SPILL_CHANNELS[spill]
    out = rgb.copy()
    out[..., keyed] = np.minimum(rgb[..., keyed], np.maximum(rgb[..., a], rgb[..., b]))
    return out


def _disc(px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
