"""Matte tuning's stage (`--threshold`, `--erode`, `--dilate`, `--feather`; model/matte_tuning.py): on the
full-resolution alpha, after the upsampling (and `--refine`) and before compositing."""
from __future__ import annotations

from model.matte_tuning import MatteTuning
from stream.frames import Frame


class MatteTuningStage:
    """Applies `tuning` to `frame.alpha`."""

    name = "matte-tuning"

    def __init__(self, tuning: MatteTuning) -> None:
        self.tuning = tuning

    def process(self, frame: Frame) -> Frame:
        if frame.alpha is None:
            raise ValueError(f"frame {frame.index} has no alpha: run the matting stage first")
        frame.alpha = self.tuning.apply(frame.alpha)
        return frame
