"""A quality mode for stills and offline work: closed-form matting (Levin et al. 2008, pymatting's
`estimate_alpha_cf`) in the uncertain band of a trimap made from a model's matte.

The matte's edge (α = 0.5), grown and shrunk by `band_px` at the working size, is the unknown region; inside
is foreground, outside background. The solve runs at `work_size` (long side: the time grows faster than the
pixels); alphas within `LEAK` of 0 or 1 are set to it (the solve's faint leak across the band: bench/RESULTS.md),
and the alpha is scaled back to the image. A quality mode, not a per-frame one (costs: bench/RESULTS.md).
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

WORK_SIZE = 800
BAND_PX = 8
LEAK = 0.05


def trimap_from_matte(alpha: np.ndarray, band_px: int = BAND_PX) -> np.ndarray:
    """0 (background), 1 (foreground) and 0.5 (unknown: within `band_px` of the matte's α = 0.5 edge), float64."""
    mask = (alpha >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
    trimap = np.full(alpha.shape, 0.5)
    trimap[cv2.erode(mask, kernel) == 1] = 1.0
    trimap[cv2.dilate(mask, kernel) == 0] = 0.0
    return trimap


def refine_alpha(image: np.ndarray, alpha: np.ndarray, work_size: int = WORK_SIZE, band_px: int = BAND_PX,
                 solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """`alpha` (H×W float in [0, 1]) of `image` (H×W×3 uint8 RGB) refined by closed-form matting in its edge
    band; H×W float32. A matte with no edge, or nothing but edge, comes back as it was. `solver`: another of
    pymatting's `estimate_alpha_*` (image, trimap → alpha) in place of the closed form, for comparisons."""
    height, width = alpha.shape
    scale = min(1.0, work_size / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    trimap = trimap_from_matte(cv2.resize(np.asarray(alpha, np.float32), size, interpolation=cv2.INTER_AREA),
                               band_px)
    unknown = trimap == 0.5
    if not unknown.any() or unknown.all() or not (trimap == 1).any():
        return np.asarray(alpha, np.float32)
    if solver is None:
        from pymatting import estimate_alpha_cf as solver  # numba: compiled on first import after an install

    solved = np.clip(solver(small, trimap), 0, 1).astype(np.float32)
    solved[solved < LEAK] = 0
    solved[solved > 1 - LEAK] = 1
    return solved if scale == 1.0 else cv2.resize(solved, (width, height), interpolation=cv2.INTER_LINEAR)
