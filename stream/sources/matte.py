"""A given matte: the input's frames, each with its alpha read from a grayscale video or image sequence
(`p3m cutout IN -o OUT --matte MATTE`), in place of a model: recompose onto another background without matting
again, or composite with a matte another tool made.

The matte must have the input's frame count (checked up front where both counts are known, and frame by frame:
a matte that ends early or runs on is a P3MError, and the job removes its partial output). A matte of another
size is scaled to the frame when its aspect ratio is the frame's (a half-size matte), refused otherwise.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import cv2
import numpy as np

from model.errors import P3MError
from stream.frames import Frame
from stream.protocols import Source
from stream.sources.files import WHOLE, Span, open_source

log = logging.getLogger(__name__)

_COLOUR_LEVELS = 24        # a channel further than this from the others (8-bit) is colour, not a coded grey
_ASPECT_TOLERANCE = 0.02   # sizes rounded to even numbers by an encoder still count as the same shape


class MatteSource(Source):
    """`source`'s frames, each with `frame.alpha` (H×W float32 in [0, 1]) from the matte at `spec` (a grayscale
    video, a folder of images or a pattern like masks/%05d.png), cut to the input's `span`. Closes both."""

    def __init__(self, source: Source, spec: str, span: Span = WHOLE) -> None:
        self._source, self.matte_path = source, spec
        self.start_time, self.cut = source.start_time, source.cut
        self.path, self.width, self.height = source.path, source.width, source.height
        self.fps, self.time_base, self.has_audio = source.fps, source.time_base, source.has_audio
        self.frame_count = source.frame_count
        self.decoder = getattr(source, "decoder", None)          # what the job's log line reports
        self._matte = open_source(spec, span=span)
        try:
            self._check_counts()
            self._check_shape()
        except BaseException:
            self._matte.close()
            raise

    def _check_counts(self) -> None:
        """Refuse before any work when both counts are known and differ (by more than a video's estimate may)."""
        mine, theirs = self._source.frame_count, self._matte.frame_count
        if mine and theirs and abs(mine - theirs) > 1:
            raise P3MError(f"the matte {self.matte_path} has {theirs} frames, the input {self._source.path} {mine}",
                           "give the matte made from this input (one grey frame per input frame)")

    def _check_shape(self) -> None:
        """Refuse a matte whose aspect ratio is not the frame's: scaling it would misplace the person."""
        width, height = self._matte.width, self._matte.height
        if (width, height) == (self.width, self.height):
            return
        if abs(width / height - self.width / self.height) > _ASPECT_TOLERANCE * self.width / self.height:
            raise P3MError(f"the matte {self.matte_path} is {width}x{height}, the input {self.width}x{self.height}: "
                           "another shape", "give a matte of the input's size (or the same shape, scaled)")
        log.info("matte %s is %dx%d: scaled to the input's %dx%d", self.matte_path, width, height,
                 self.width, self.height)

    @property
    def damaged(self) -> int:
        """The input's damaged frames (skipped; the matte's frames are not, so the two would slip apart)."""
        return getattr(self._source, "damaged", 0)

    def __iter__(self) -> Iterator[Frame]:
        mattes = iter(self._matte)
        count = 0
        for frame in self._source:
            matte = next(mattes, None)
            if matte is None:
                raise P3MError(f"the matte {self.matte_path} ended after {count} frames, the input has more",
                               "give the matte made from this input (one grey frame per input frame)")
            frame.alpha = self._alpha(matte.image)
            count += 1
            yield frame
        if next(mattes, None) is not None:
            raise P3MError(f"the matte {self.matte_path} has more frames than the input's {count}",
                           "give the matte made from this input (one grey frame per input frame)")

    def _alpha(self, image: np.ndarray) -> np.ndarray:
        """The alpha coded by a grey RGB frame, at the input's size; a colour frame is refused."""
        spread = cv2.absdiff(image[..., 0], image[..., 1]) | cv2.absdiff(image[..., 1], image[..., 2])
        if np.count_nonzero(spread > _COLOUR_LEVELS) > spread.size // 100:
            raise P3MError(f"the matte {self.matte_path} has colour frames: it is not a matte",
                           "give the grayscale matte (e.g. from p3m cutout --alpha-out m.mkv), not a video")
        alpha = image[..., 1]
        if alpha.shape != (self.height, self.width):
            alpha = cv2.resize(alpha, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return alpha.astype(np.float32) * np.float32(1 / 255)

    def close(self) -> None:
        self._matte.close()
        self._source.close()
