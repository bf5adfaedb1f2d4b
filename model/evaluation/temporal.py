"""Metrics of a matte over time: flicker where the picture stands still, and, against a ground-truth video matte,
dtSSD (as RVM's evaluation computes it) and MESSDdt (Erofeev et al. 2015, motion from the ground truth).

Alphas are H×W float arrays in [0, 1], frames H×W×3 uint8 RGB, consecutive.
"""
from __future__ import annotations

import cv2
import numpy as np

STILL_BELOW = 2.0 / 255     # a pixel stands still when its 5×5 neighbourhood's mean RGB change is below this
STILL_WINDOW = 5
_CHANNEL_MEAN = np.full((1, 3), 1 / 3, np.float32)


def still_pixels(frame: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Bool H×W: where the mean absolute RGB change over the 5×5 neighbourhood is below 2/255."""
    window = cv2.boxFilter(cv2.absdiff(frame, previous), cv2.CV_32F, (STILL_WINDOW, STILL_WINDOW))  # per channel
    return cv2.transform(window, _CHANNEL_MEAN) < STILL_BELOW * 255   # far cheaper than numpy's mean(axis=2)


class FlickerMeter:
    """Flicker of a matte: the mean |α_t − α_{t−1}| over the pixels whose picture stood still (`still_pixels`),
    pooled over every pair of consecutive frames. Feed it frame by frame (`add`); `value` is NaN until some
    pixel stood still."""

    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.total, self.pixels, self.pairs = 0.0, 0, 0

    def add(self, alpha: np.ndarray, frame: np.ndarray) -> None:
        if alpha.shape != frame.shape[:2]:
            raise ValueError(f"alpha {alpha.shape} and frame {frame.shape[:2]} differ in size")
        if self._previous is not None and self._previous[0].shape == alpha.shape:
            last_alpha, last_frame = self._previous
            still = still_pixels(frame, last_frame)
            self.total += float(np.abs(alpha - last_alpha)[still].sum(dtype=np.float64))
            self.pixels += int(still.sum())
            self.pairs += 1
        self._previous = (alpha, frame)

    @property
    def value(self) -> float:
        return self.total / self.pixels if self.pixels else float("nan")


def flicker(alphas: list[np.ndarray], frames: list[np.ndarray]) -> float:
    """FlickerMeter over whole lists."""
    meter = FlickerMeter()
    for alpha, frame in zip(alphas, frames, strict=True):
        meter.add(alpha, frame)
    return meter.value


def dtssd(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray) -> float:
    """sqrt(mean(((p_t − p_{t−1}) − (g_t − g_{t−1}))²)) for one pair of frames (RVM reports it ×100)."""
    diff = (pred - pred_prev) - (true - true_prev)
    return float(np.sqrt(np.mean(np.square(diff, dtype=np.float64))))


def messddt(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray) -> float:
    """mean |(p_t − g_t)² − (p_{t−1} − g_{t−1})²∘warp| for one pair of frames: the error's change along the
    ground truth's motion (Farnebäck flow from g_t to g_{t−1}), so an error that moves with the subject costs
    nothing and one that comes and goes does."""
    to_u8 = [(np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8) for a in (true, true_prev)]
    flow = cv2.calcOpticalFlowFarneback(to_u8[0], to_u8[1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = true.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    warped = [cv2.remap(a.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
              for a in (pred_prev, true_prev)]
    error_now = np.square(pred - true, dtype=np.float64)
    error_before = np.square(warped[0] - warped[1], dtype=np.float64)
    return float(np.mean(np.abs(error_now - error_before)))
