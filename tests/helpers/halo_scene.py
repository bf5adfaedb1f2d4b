"""A synthetic matting scene with known foreground, alpha and backgrounds: a head with thin hair strands over a
saturated green, to recompose onto another colour and measure the halo (colour error where 0 < α < 1)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GREEN = (20, 235, 40)
MAGENTA = (230, 30, 220)


@dataclass(frozen=True)
class HaloScene:
    """F (float in [0, 1]), α and the old background, and the frame they make (uint8, as a camera gives it)."""

    foreground: np.ndarray      # H×W×3 float32
    alpha: np.ndarray           # H×W float32
    background: np.ndarray      # H×W×3 float32

    @property
    def image(self) -> np.ndarray:
        return to_uint8(self.alpha[..., None] * self.foreground + (1 - self.alpha[..., None]) * self.background)

    def truth_over(self, colour: tuple[int, int, int]) -> np.ndarray:
        """The true composite over a plain `colour`: F·α + colour·(1 − α), uint8."""
        new = np.broadcast_to(np.float32(colour) / 255, self.foreground.shape)
        return to_uint8(self.alpha[..., None] * self.foreground + (1 - self.alpha[..., None]) * new)

    def band_error(self, composite: np.ndarray, colour: tuple[int, int, int]) -> float:
        """Mean |composite − truth| (grey levels, over channels) on the pixels with 0 < α < 1."""
        band = (self.alpha > 0.5 / 255) & (self.alpha < 254.5 / 255)
        diff = np.abs(composite.astype(np.float32) - self.truth_over(colour).astype(np.float32))
        return float(diff[band].mean())


def halo_scene(height: int = 240, width: int = 320, seed: int = 0) -> HaloScene:
    """A brown-haired head (an ellipse, soft 3 px edge) with 60 thin strands (1-2 px, partial α) over
    `GREEN` with a slight gradient; the foreground colour varies slowly (shading, a lighter streak)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx, ry, rx = height * 0.6, width * 0.5, height * 0.35, width * 0.22
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    alpha = np.clip((1.0 - r) * min(ry, rx) / 3.0 + 0.5, 0, 1)          # a 3 px soft edge
    scale = 4                                                            # strands drawn at 4×, then averaged
    strands = np.zeros((height * scale, width * scale), np.float32)
    for _ in range(60):
        angle = rng.uniform(np.pi * 1.05, np.pi * 1.95)
        y0, x0 = cy + ry * 0.9 * np.sin(angle), cx + rx * 0.9 * np.cos(angle)
        length = rng.uniform(0.3, 0.8) * ry
        bend = rng.uniform(-0.4, 0.4)
        points = [(x0 + length * t * np.cos(angle + bend * t), y0 + length * t * np.sin(angle + bend * t))
                  for t in np.linspace(0, 1, 12)]
        polyline = (np.array(points) * scale).astype(np.int32)
        cv2.polylines(strands, [polyline], False, float(rng.uniform(0.5, 1.0)),
                      thickness=int(rng.integers(2, 7)), lineType=cv2.LINE_AA)
    strands = cv2.resize(strands, (width, height), interpolation=cv2.INTER_AREA)
    alpha = np.maximum(alpha, np.clip(strands, 0, 1)).astype(np.float32)
    alpha[alpha < 1 / 255] = 0
    shade = 0.75 + 0.25 * (yy / height)
    foreground = np.stack([0.45 * shade, 0.28 * shade, 0.16 * shade], axis=-1)
    foreground[..., 0] += 0.25 * np.exp(-((xx - cx * 0.8) / (width * 0.08)) ** 2)    # a lighter streak
    background = np.empty_like(foreground)
    background[:] = np.float32(GREEN) / 255
    background *= (0.9 + 0.1 * (xx / width))[..., None]
    return HaloScene(np.clip(foreground, 0, 1).astype(np.float32), alpha,
                     np.clip(background, 0, 1).astype(np.float32))


def naive_composite(image: np.ndarray, alpha: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """The frame's own colours over `colour`: α·I + colour·(1 − α), uint8."""
    a = alpha[..., None]
    return to_uint8(a * image.astype(np.float32) / 255 + (1 - a) * np.float32(colour) / 255)


def to_uint8(values: np.ndarray) -> np.ndarray:
    return (values * 255 + 0.5).clip(0, 255).astype(np.uint8)
