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
class VideoSource(Source):
    """A video file or URL read by a `VideoReader` (threaded decode, NVDEC if asked), numbered from 0."""

    def __init__(self, spec: str, *, options: dict[str, str] | None = None, hw_decode: bool = False) -> None:
        self.path = spec
        url = is_url(spec)
        if not url and not os.path.exists(spec):
            raise P3MError(f"input not found: {spec}", "check the path")
        if not url and not os.path.isfile(spec):
            raise P3MError(f"input is not a file: {spec}", "give a video file, an image folder or a pattern")
        # NVDEC if asked and it really decodes (stream/hwcodecs.py), else CPU threads; `decoder` says which and why.
        self.decoder = pick_decoder(hardware=hw_decode)
        self._reader = reader = VideoReader(spec, options=options,
                                            hwaccel=self.decoder.hwaccel if self.decoder.hardware else None)
        self.rotation = reader.rotation
        self.width, self.height, self.fps, self.time_base = reader.width, reader.height, reader.fps, reader.time_base
        self.frame_count = reader.frame_count
        self.has_audio = bool(reader.container.streams.audio)

    @property
    def damaged(self) -> int:
        """Input frames that never came out of the decoder (damaged packets): missing from the output, the
        others at their own times."""
        return self._reader.dropped

    def __iter__(self) -> Iterator[Frame]:
        for index, (image, decoded) in enumerate(self._reader):
            yield Frame(index=index, image=image, pts=decoded.pts, time_base=self.time_base,
                        captured_at=time.perf_counter())

    def close(self) -> None:
        self._reader.close()


class ImageSequenceSource(Source):
    """A folder of images (sorted by name), a printf pattern (sorted by number) or one image, via OpenCV."""

    def __init__(self, spec: str, *, fps: Fraction | float = DEFAULT_FPS) -> None:
        self.path = spec
        self.files = _list_images(spec)
        first = read_rgb(self.files[0])
        self.height, self.width = first.shape[:2]
        self.fps = sane_fps(Fraction(fps).limit_denominator(1001))
        self.time_base = 1 / self.fps
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = read_rgb(file)
            if image.shape[:2] != (self.height, self.width):
                raise P3MError(f"{file} is {image.shape[1]}x{image.shape[0]}, the sequence is "
                               f"{self.width}x{self.height}", "all images of a sequence must have one size")
            yield Frame(index=index, image=image, pts=index, time_base=self.time_base,
                        captured_at=time.perf_counter())


def _list_images(spec: str) -> list[str]:
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


def open_source(spec: str, *, fps: Fraction | float | None = None,
                options: dict[str, str] | None = None, hw_decode: bool = False) -> Source:
    """Open `spec`: a video file or URL, a folder of images, or a printf pattern like `frames/%05d.png`.

    `fps` sets an image sequence's rate (default 25); `options` go to FFmpeg's demuxer (URLs, devices);
    `hw_decode` decodes a video with NVDEC where it works (else on the CPU, as without it).
    """
    if not is_url(spec) and (os.path.isdir(spec) or is_printf_pattern(spec)):
        return ImageSequenceSource(spec, fps=fps or DEFAULT_FPS)
    if not is_url(spec) and spec.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(spec):
        return ImageSequenceSource(spec, fps=fps or DEFAULT_FPS)     # one still image: a 1-frame sequence
    return VideoSource(spec, options=options, hw_decode=hw_decode)
