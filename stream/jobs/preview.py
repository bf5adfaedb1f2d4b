"""`p3m preview`: a frame (or a few, spread over the input from `at`) cut out as the cut-out would, drawn as
input | matte | composite side by side in one PNG, to try settings in seconds before a long job. Each frame runs
alone through the cut-out's stages (Assembly.one_by_one), as a photo does."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError
from model.tiles import labelled_row, write_sheet
from stream.frames import Frame
from stream.jobs.assembly import Assembly
from stream.jobs.config import CutoutConfig
from stream.sinks.paths import Confirm, Output, input_files, reserve_outputs
from stream.sources.files import Span, open_source

MAX_FRAMES = 12
TILE_HEIGHT = 360
COLUMNS = "input | matte | composite"


@dataclass(frozen=True)
class PreviewResult:
    output: str
    times: tuple[float, ...]       # the input's second each row shows
    seconds: float
    model: str

    def summary(self) -> str:
        shown = ", ".join(f"{t:.2f}" for t in self.times)
        return f"preview of {len(self.times)} frame{'s' if len(self.times) > 1 else ''} (at {shown} s) in " \
               f"{self.seconds:.1f} s with {self.model} -> {self.output}"


def run_preview(input: str, output: str, settings: CutoutConfig, *, at: float = 0.0, frames: int = 1,
                overwrite: bool = False, confirm: Confirm | None = None) -> PreviewResult:
    """Draw `frames` frames of `input` from `at` seconds on (spread evenly to its end) into the PNG `output`."""
    if not 1 <= frames <= MAX_FRAMES:
        raise P3MError(f"--frames {frames}: a preview shows 1 to {MAX_FRAMES} frames",
                       "for more, cut a piece: p3m cutout IN -o piece.mp4 --start TIME --frames N")
    if Path(output).suffix.lower() != ".png":
        raise P3MError(f"a preview is a PNG, not {Path(output).name}", "name it e.g. preview.png")
    started = time.perf_counter()
    settings = settings.replace(smoothing=False)      # each frame alone, as a photo
    with contextlib.ExitStack() as stack:
        assembly = Assembly(stack, settings)
        with open_source(input) as whole:
            files = getattr(whole, "files", None)
            length = (whole.frame_count or 1) / float(whole.fps)
            frames = min(frames, whole.frame_count or frames)       # a photo is one frame, however many asked
        stack.enter_context(reserve_outputs([Output(output, "composite")], [input_files("the input", input, files)],
                                            overwrite=overwrite, confirm=confirm))
        step = max(0.0, length - at) / frames
        picked = [_frame_at(input, at + k * step) for k in range(frames)]     # a bad --at fails before the model
        assembly.load()
        stages = assembly.one_by_one()
        rows = []
        for frame, shown in picked:
            for stage in stages:          # nothing of the last frame carries over
                getattr(stage, "reset", lambda: None)()
            for stage in stages:
                frame = stage.process(frame)
            rows.append(labelled_row(tiles(frame), f"{Path(input).name} at {shown:.2f} s    {COLUMNS}",
                                     min(TILE_HEIGHT, frame.image.shape[0])))
        write_sheet(rows, output, "a preview")
        return PreviewResult(output, tuple(t for _, t in picked), time.perf_counter() - started,
                             assembly.matter.describe())


def _frame_at(input: str, seconds: float) -> tuple[Frame, float]:
    """The input's frame at `seconds` (the first at or after it) and its time."""
    with open_source(input, span=Span(seconds, frames=1)) as source:
        return next(iter(source)), source.start_time or seconds


def tiles(frame: Frame) -> list[np.ndarray]:
    """Input, matte and composite of a cut-out frame as RGB pictures (a transparent one over a checkerboard)."""
    matte = cv2.cvtColor(cv2.convertScaleAbs(frame.alpha, alpha=255.0), cv2.COLOR_GRAY2RGB)
    composite = frame.output
    if composite.shape[2] == 4:
        composite = over_checkerboard(composite)
    return [frame.image, matte, composite]


def over_checkerboard(rgba: np.ndarray, square: int = 16) -> np.ndarray:
    """An RGBA picture over light and mid grey squares, as image editors show transparency."""
    h, w = rgba.shape[:2]
    y, x = np.mgrid[:h, :w]
    board = np.where(((y // square + x // square) % 2)[..., None] == 0, 200, 150).astype(np.float32)
    a = rgba[..., 3:].astype(np.float32) / 255
    return (rgba[..., :3] * a + board * (1 - a) + 0.5).astype(np.uint8)
