"""The unit that flows through the pipeline: one video frame and what the stages add to it."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    """One decoded frame; stages fill in `alpha` and `output` as it moves downstream."""

    index: int                      # 0-based position in the source, gap-free
    image: np.ndarray               # H×W×3 uint8 RGB, full resolution
    pts: int | None = None          # presentation time in `time_base` units, as decoded (may be None)
    time_base: Fraction | None = None
    captured_at: float = 0.0        # time.perf_counter() when the source produced it (latency stats)
    alpha: np.ndarray | None = None   # H×W float32 in [0, 1], full resolution
    output: np.ndarray | None = None  # H×W×3 (composite) or H×W×4 (RGBA) uint8, what sinks write
    extras: dict = field(default_factory=dict)

    @property
    def pixels(self) -> np.ndarray:
        """What sinks write: the output when a stage made one, else the image itself."""
        return self.output if self.output is not None else self.image

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when the source gave one."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """An H×W float alpha in [0, 1] as uint8, rounded (video sinks and compositing; model.imageio truncates,
    as the official code saves its mattes)."""
    return (np.clip(alpha, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
