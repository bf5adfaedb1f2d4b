"""Where frames come from: a video file or URL (PyAV) or an image sequence, as context managers.

Every source yields `Frame`s with a gap-free `index` from 0, `pts`/`time_base` as decoded, the RGB image
(H×W×3 uint8) and `captured_at = time.perf_counter()` for latency stats. User-caused failures (missing
file, not a video, no frame at all, empty folder) raise `P3MError` from `open_source`, before any output exists.

Damaged input is handled as FFmpeg does: a packet the decoder rejects is skipped with a warning (counted in
`VideoSource.damaged`), a read error or a short file ends the input with a warning, and a display matrix
(phone videos) turns the frames upright (`VideoSource.rotation`; flips are not applied).
"""
from __future__ import annotations

import glob
import itertools
import logging
import os
import re
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from model.errors import P3MError
from model.imageio import IMAGE_EXTENSIONS, read_rgb
from stream.ffmpeg import DEFAULT_FPS, PRINTF_FIELD, is_printf_pattern, is_url, sane_fps
from stream.frames import Frame
from stream.hwcodecs import pick_decoder
from stream.protocols import Source

log = logging.getLogger(__name__)
MAX_DAMAGE_WARNINGS = 5   # one warning each for the first damaged packets, then a total at the end


class VideoSource(Source):
    """A video file or URL demuxed and decoded by PyAV (threaded decode), frames converted to RGB."""

    def __init__(self, spec: str, *, options: dict[str, str] | None = None, hw_decode: bool = False) -> None:
        self.path = spec
        url = is_url(spec)
        if not url and not os.path.exists(spec):
            raise P3MError(f"input not found: {spec}", "check the path")
        if not url and not os.path.isfile(spec):
            raise P3MError(f"input is not a file: {spec}", "give a video file, an image folder or a pattern")
        if url:
            # A dead camera or server must not hang us forever: 10 s network timeout (µs).
            options = {"timeout": "10000000", **({"rtsp_transport": "tcp"} if spec.startswith("rtsp") else {}),
                       **(options or {})}
        # NVDEC if asked and it really decodes (stream/hwcodecs.py), else CPU threads; `decoder` says which and why.
        self.decoder = pick_decoder(hardware=hw_decode)
        hwaccel = {"hwaccel": self.decoder.hwaccel} if self.decoder.hardware else {}
        try:
            self._container = av.open(spec, options=options or {}, **hwaccel)
        except (av.FFmpegError, OSError) as e:
            raise P3MError(f"cannot open {spec}: {_reason(e)}",
                           "is it a video file (mp4, mkv, mov, webm, avi...) and not damaged?") from None
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams}) or ["no streams"]
            self._container.close()
            raise P3MError(f"{spec} has no video stream (found: {', '.join(kinds)})",
                           "give a video file or an image sequence")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"      # frame + slice threads: decode is a large share of CPU time
        ctx = stream.codec_context
        self._coded = (ctx.width, ctx.height)
        if not ctx.width or not ctx.height:
            self._container.close()
            raise P3MError(f"cannot read the video size of {spec}", "the file may be damaged")
        self.damaged = 0                 # packets the decoder rejected (skipped, with a warning)
        self._index = 0                  # frames yielded so far
        self._decoded = self._decode()
        # Decode the first frame now: a video without frames fails here, before any output exists, and the
        # frame's display matrix (phone videos) tells the upright size the sinks must be opened with.
        try:
            self._first = next(self._decoded, None)
        except BaseException:
            self._container.close()
            raise
        if self._first is None:
            self._container.close()
            raise P3MError(f"{spec} has a video stream but no frame could be decoded",
                           "the file is empty or damaged")
        # Counter-clockwise quarter turns, as FFmpeg applies them by default (autorotate).
        self.rotation = round(self._first.rotation / 90) % 4 * 90
        if self.rotation:
            log.info("%s: display rotation %d°: the frames are turned upright", spec, self.rotation)
        self.width, self.height = self._coded[::-1] if self.rotation in (90, 270) else self._coded
        self.fps = sane_fps(stream.average_rate, stream.guessed_rate, stream.base_rate)
        self.time_base = stream.time_base or 1 / self.fps
        self.frame_count = self._estimate_count()
        self.has_audio = bool(self._container.streams.audio)

    def _estimate_count(self) -> int | None:
        if self._stream.frames > 0:
            return int(self._stream.frames)
        if self._stream.duration and self._stream.time_base:
            return max(1, round(self._stream.duration * self._stream.time_base * self.fps))
        if self._container.duration:     # in AV_TIME_BASE (µs) units
            return max(1, round(self._container.duration / 1_000_000 * self.fps))
        return None

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Decoded frames; a packet the decoder rejects is skipped (and counted), a read error ends the input."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError as e:
                log.warning("%s: reading stopped after %d frames: %s (the file may be truncated)",
                            self.path, self._index, _reason(e))
                yield from self._flush()   # the frames the decoder still holds (reordering, threads)
                return
            if packet is None:
                return
            try:
                frames = packet.decode()
            except av.InvalidDataError as e:
                self.damaged += 1      # like FFmpeg: drop the damaged frame, keep going
                if self.damaged <= MAX_DAMAGE_WARNINGS:
                    log.warning("%s: skipped a damaged packet after %d frames (pts %s): %s",
                                self.path, self._index, packet.pts, _reason(e))
                continue
            except av.FFmpegError as e:
                raise P3MError(f"cannot decode {self.path} after {self._index} frames: {_reason(e)}",
                               "the file may be truncated or damaged") from None
            yield from frames

    def _flush(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self._stream.decode(None)
        except av.FFmpegError:
            return

    def __iter__(self) -> Iterator[Frame]:
        frames = self._decoded if self._first is None else itertools.chain([self._first], self._decoded)
        self._first = None
        turns = self.rotation // 90
        for decoded in frames:
            # Reformat to the first frame's size: a mid-stream resolution change must not reach stages.
            image = decoded.to_ndarray(format="rgb24", width=self._coded[0], height=self._coded[1])
            if turns:
                image = np.ascontiguousarray(np.rot90(image, turns))
            yield Frame(index=self._index, image=image, pts=decoded.pts, time_base=self.time_base,
                        captured_at=time.perf_counter())
            self._index += 1
        if self.damaged > MAX_DAMAGE_WARNINGS:
            log.warning("%s: skipped %d damaged packets in all", self.path, self.damaged)
        if self.frame_count and self._index < 0.9 * self.frame_count - 1:
            log.warning("%s: the input ended after %d of the %d frames its header announces: "
                        "it may be truncated", self.path, self._index, self.frame_count)

    def close(self) -> None:
        try:
            self._decoded.close()
        finally:
            self._container.close()


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


def _reason(error: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV wraps it in."""
    return getattr(error, "strerror", None) or str(error)
