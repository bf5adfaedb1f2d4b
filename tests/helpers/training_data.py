"""Test helpers shared across the suite."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_synthetic_set(root: str | Path, count: int = 12, size: int = 96, seed: int = 0) -> Path:
    """Write a tiny P3M-10k-style set under `root`: train/blurred_image/*.jpg + train/mask/*.png.

    Each image is a reddish ellipse or rectangle (soft 2-3 px edge, so there is an unknown band)
    composited on a green-blue texture: the red channel tells foreground from background.
    Returns the train/ folder.
    """
    train = Path(root) / "train"
    (train / "blurred_image").mkdir(parents=True, exist_ok=True)
    (train / "mask").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        phase, freq = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.05, 0.3, 2)
        texture = 0.5 + 0.25 * np.sin(freq[0] * xx + phase[0]) * np.cos(freq[1] * yy + phase[1])
        bg = np.stack([0.1 * texture, texture, 1.0 - 0.6 * texture], axis=-1)
        fg = np.stack([0.85 + 0.1 * np.sin(0.3 * xx), 0.15 + 0.1 * texture, 0.15 * np.ones_like(xx)], axis=-1)
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        ry, rx = rng.uniform(0.15, 0.3, 2) * size
        if i % 2:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        alpha = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigmaX=1.2)
        image = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
        rgb = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
        name = f"synthetic_{i:03d}"
        cv2.imwrite(str(train / "blurred_image" / f"{name}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(train / "mask" / f"{name}.png"), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8))
    return train
