"""The quality mode's stage (`p3m cutout --refine`): closed-form matting at each matte's edges
(model/refine.py), after the upsampling and before compositing; it keeps the time it costs for the summary."""
from __future__ import annotations

import time

from model.refine import refine_alpha
from stream.frames import Frame


class RefineStage:
    """Refines `frame.alpha` at full size by closed-form matting in its edge band; `seconds` is its total time."""

    name = "refine"

    def __init__(self) -> None:
        self.seconds = 0.0

    def process(self, frame: Frame) -> Frame:
        if frame.alpha is None:
            raise ValueError(f"frame {frame.index} has no alpha: run the matting stage first")
        start = time.perf_counter()
        frame.alpha = refine_alpha(frame.image, frame.alpha)
        self.seconds += time.perf_counter() - start
        return frame
