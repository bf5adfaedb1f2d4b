"""The fast guided filter (He & Sun 2015) with a gray guide in OpenCV and numpy: the CPU pipeline's default
alpha upsampler, without torch. Its twin in torch, for every guide and device, is guided_filter_torch.py.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

# ITU-R BT.601 luma weights, as cv2.COLOR_RGB2GRAY uses.
LUMA = (0.299, 0.587, 0.114)


# Defaults tuned on the 14 P3M portraits (MediaPipe at 512, gray guide): radius in low-res pixels.
GUIDED_RADIUS, GUIDED_EPS = 1, 1e-4


UPSAMPLERS = ("guided", "bilinear")    # how the alpha goes up to full size: snapped to the frame's edges, or not


def guided_upsample_gray_cpu(alpha_lr: np.ndarray, gray_lr: np.ndarray, gray_hr: np.ndarray,
                             radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> np.ndarray:
    """`guided_filter_torch.guided_upsample` with a gray guide, in OpenCV and numpy: h×w float32 `alpha_lr`,
    uint8 gray guides at h×w and H×W → H×W float32 alpha in [0, 1]. Same result (within 1e-5) for less CPU
    than the torch path, and the GIL is released throughout (the pipeline's other threads run meanwhile)."""
    g = gray_lr.astype(np.float32)
    g *= 1.0 / 255.0
    p = np.asarray(alpha_lr, np.float32)
    inverse_sizes = _inverse_window_sizes(*p.shape, radius)
    mean_g, mean_p, corr_gp, corr_gg = (_box_mean_cv(x, radius, inverse_sizes) for x in (g, p, g * p, g * g))
    a = (corr_gp - mean_g * mean_p) / (corr_gg - mean_g * mean_g + np.float32(eps))
    b = mean_p - a * mean_g
    height, width = gray_hr.shape
    a_hr, b_hr = (cv2.resize(_box_mean_cv(x, radius, inverse_sizes), (width, height), interpolation=cv2.INTER_LINEAR)
                  for x in (a, b))
    out = cv2.multiply(a_hr, gray_hr, scale=1.0 / 255.0, dtype=cv2.CV_32F)
    cv2.add(out, b_hr, dst=out)
    return np.clip(out, 0.0, 1.0, out=out)


def _box_mean_cv(x: np.ndarray, r: int, inverse_sizes: np.ndarray) -> np.ndarray:
    """`box_mean` of an h×w float32 image with OpenCV: window sums (zeros outside) over the window's size."""
    sums = cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return cv2.multiply(sums, inverse_sizes, dst=sums)


@functools.lru_cache(maxsize=8)
def _inverse_window_sizes(height: int, width: int, r: int) -> np.ndarray:
    """1 / how many pixels the (2r+1)² window holds at each position, clipped at the borders."""
    def along(n: int) -> np.ndarray:
        i = np.arange(n)
        return (np.minimum(i + r + 1, n) - np.maximum(i - r, 0)).astype(np.float32)
    return 1.0 / np.outer(along(height), along(width)).astype(np.float32)
