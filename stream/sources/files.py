"""Where frames come from: a video file or URL (PyAV) or an image sequence, as context managers.

Every source yields `Frame`s with a gap-free `index` from 0, `pts`/`time_base` as decoded, the RGB image
(H×W×3 uint8) and `captured_at = time.perf_counter()` for latency stats. User-caused failures (missing
file, not a video, no frame at all, empty folder) raise `P3MError` from `open_source`, before any output exists.

Videos are read by `stream.decoding.VideoReader`, which `p3m live --camera FILE/URL/device` and video
backgrounds share.
Damaged input is handled as FFmpeg does: a packet the decoder rejects is skipped with a warning (counted in
`VideoSource.damaged`), a read error or a short file ends the input with a warning, and a display matrix
(phone videos) turns the frames upright (`VideoSource.rotation`; flips are not applied).
"""
from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from model.errors import P3MError
from model.imageio import IMAGE_EXTENSIONS, read_rgb
from stream.decoding import VideoReader
from stream.ffmpeg import (
    DEFAULT_FPS,
    PRINTF_FIELD,
    is_printf_pattern,
    is_url,
    sane_fps,
)
from stream.frames import Frame
from stream.hwcodecs import pick_decoder
from stream.protocols import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    """The piece of an input a job reads (`--start`, `--duration` / `--frames`): from `start` seconds, for
    `duration` seconds or `frames` frames (at most one of the two; neither: to the end)."""

    start: float = 0.0
    duration: float | None = None
    frames: int | None = None

    @property
    def bounded(self) -> bool:
        """True when the piece ends before the input may."""
        return self.duration is not None or self.frames is not None

    def count(self, fps: Fraction, total: int | None) -> int | None:
        """The frames the piece holds, estimated from the input's `total` (None: unknown) at `fps`."""
        left = None if total is None else max(0, total - round(self.start * fps))
        wanted = self.frames if self.frames is not None else (
            None if self.duration is None else max(1, round(self.duration * fps)))
        return left if wanted is None else wanted if left is None else min(left, wanted)


WHOLE = Span()


class VideoSource(Source):
    """A video file or URL read by a `VideoReader` (threaded decode, NVDEC if asked), numbered from 0; with a
    `span`, its piece only, its times shifted so that the first frame is at 0 (`start_time` says by how much)."""

    def __init__(self, spec: str, *, options: dict[str, str] | None = None, hw_decode: bool = False,
                 span: Span = WHOLE) -> None:
        self.path = spec
        url = is_url(spec)
        if not url and not os.path.exists(spec):
            raise P3MError(f"input not found: {spec}", "check the path")
        if not url and not os.path.isfile(spec):
            raise P3MError(f"input is not a file: {spec}", "give a video file, an image folder or a pattern")
        # NVDEC if asked and it really decodes (stream/hwcodecs.py), else CPU threads; `decoder` says which and why.
        self.decoder = pick_decoder(hardware=hw_decode)
        self._reader = reader = VideoReader(spec, options=options, start=span.start,
                                            hwaccel=self.decoder.hwaccel if self.decoder.hardware else None)
        self.rotation = reader.rotation
        self.width, self.height, self.fps, self.time_base = reader.width, reader.height, reader.fps, reader.time_base
        self.span, self.cut = span, span.bounded
        self.frame_count = span.count(self.fps, reader.frame_count)
        self.has_audio = bool(reader.container.streams.audio)
        self._first_pts = reader.first_pts or 0
        self._stopped_at: int | None = None
        self._shift = self._first_pts if span.start > 0 else 0    # the output starts at 0; the audio is cut there too
        self.start_time = float(self._shift * self.time_base)

    @property
    def damaged(self) -> int:
        """Input frames that never came out of the decoder (damaged packets): missing from the output, the
        others at their own times."""
        if self._stopped_at is not None:        # a piece: the packets after it were still in the decoder
            return self._reader.dropped_before(self._stopped_at)
        return self._reader.dropped

    def __iter__(self) -> Iterator[Frame]:
        span, shift = self.span, self._shift
        end = None if span.duration is None else self._first_pts + round(span.duration / self.time_base)
        for index, (image, decoded) in enumerate(self._reader):
            if index == span.frames or (end is not None and decoded.pts is not None and decoded.pts >= end):
                self._stopped_at = decoded.pts
                return
            pts = None if decoded.pts is None else decoded.pts - shift
            yield Frame(index=index, image=image, pts=pts, time_base=self.time_base, captured_at=time.perf_counter())

    def close(self) -> None:
        self._reader.close()


class ImageSequenceSource(Source):
    """A folder of images (sorted by name), a printf pattern (sorted by number) or one image, via OpenCV; with
    a `span`, the images of its piece at `fps`, numbered from 0."""

    def __init__(self, spec: str, *, fps: Fraction | float = DEFAULT_FPS, span: Span = WHOLE) -> None:
        self.path = spec
        self.fps = sane_fps(Fraction(fps).limit_denominator(1001))
        self.time_base = 1 / self.fps
        files = list_images(spec)
        skip = round(span.start * self.fps)
        if skip >= len(files):
            raise P3MError(f"the start, {span.start:g} s, is past the end of {spec} ({len(files)} images at "
                           f"{float(self.fps):g} fps: {float(len(files) / self.fps):.3f} s)",
                           "give a time within the sequence")
        self.files = files[skip:skip + (span.count(self.fps, len(files)) or 0)]
        self.cut = span.bounded
        first = read_rgb(self.files[0])
        self.height, self.width = first.shape[:2]
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = read_rgb(file)
            if image.shape[:2] != (self.height, self.width):
                raise P3MError(f"{file} is {image.shape[1]}x{image.shape[0]}, the sequence is "
                               f"{self.width}x{self.height}", "all images of a sequence must have one size; "
                               "to cut them out as photos, each under its own name, give a folder: -o out/")
            yield Frame(index=index, image=image, pts=index, time_base=self.time_base,
                        captured_at=time.perf_counter())


def list_images(spec: str) -> list[str]:
    """The image files of a folder (by name), a printf pattern (by number) or one image; P3MError when none."""
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(spec):
        files = sorted(str(p) for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise P3MError(f"no images in folder {spec}",
                           f"it should hold {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files")
        return files
    folder, name = os.path.split(spec)
    field = PRINTF_FIELD.search(name)
    assert field is not None
    before, after = name[:field.start()], name[field.end():]
    numbered = re.compile(re.escape(before) + r"(\d+)" + re.escape(after) + "$")
    found = [(int(m.group(1)), p) for p in glob.glob(os.path.join(glob.escape(folder), "*"))
             if (m := numbered.match(os.path.basename(p)))]
    if not found:
        raise P3MError(f"no files match {spec}", "the pattern's %d stands for the frame number, e.g. %05d")
    return [p for _, p in sorted(found)]


def is_image_input(spec: str) -> bool:
    """True for what `open_source` reads as images: a folder, a printf pattern or one image file."""
    if is_url(spec):
        return False
    return os.path.isdir(spec) or is_printf_pattern(spec) or (
        spec.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(spec))


def open_source(spec: str, *, fps: Fraction | float | None = None, options: dict[str, str] | None = None,
                hw_decode: bool = False, span: Span = WHOLE) -> Source:
    """Open `spec`: a video file or URL, a folder of images, or a printf pattern like `frames/%05d.png`.

    `fps` sets an image sequence's rate (default 25); `options` go to FFmpeg's demuxer (URLs, devices);
    `hw_decode` decodes a video with NVDEC where it works (else on the CPU, as without it); `span` reads a
    piece of it only.
    """
    if is_image_input(spec):       # one still image is a 1-frame sequence
        return ImageSequenceSource(spec, fps=fps or DEFAULT_FPS, span=span)
    return VideoSource(spec, options=options, hw_decode=hw_decode, span=span)
