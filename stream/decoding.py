"""The one decoding path for videos: a file, URL or device demuxed and decoded by PyAV into upright RGB
images of one size. The cut-out's input (stream/sources/files.py), the live camera's files, URLs and
devices (stream/sources/camera.py) and video backgrounds (stream/stages/backgrounds.py) all read through it.

Damaged input is handled as FFmpeg does: a packet the decoder rejects is skipped with a warning (counted), a
read error or a short file ends the input with a warning, and a display matrix (phone videos) turns the
frames upright (flips are not applied).
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import av
import numpy as np

from model.errors import P3MError
from stream.ffmpeg import error_reason, open_input, stream_fps

log = logging.getLogger(__name__)


class NoVideoStream(P3MError):
    """The input opened, and holds no video stream (an audio file, say)."""

MAX_DAMAGE_WARNINGS = 5   # one warning each for the first damaged packets, then a total at the end


class VideoReader:
    """The first video stream of a file, URL or device, demuxed and decoded by PyAV: RGB images, upright, one size.

    The one decoding path of `p3m cutout` and of `p3m live --camera`. Opening decodes the first frame: a video
    without one fails here, and its display matrix gives the upright size.

    Args:
        name: how messages call the input ("camera /dev/video0"); the spec by default.
        hint: the hint when it cannot be opened or has no video; a file's by default.
        format, options, hwaccel: for `av.open`; devices need a format, NVDEC a hwaccel.
        thread_type: "AUTO" (frame + slice threads) for throughput, "SLICE" where held-back frames are latency.
        size: the upright size to scale to (a camera size asked of a file); the input's by default.
        reconnects: a read or decode error is raised, for the caller to reopen; else it ends the input (read)
            or is a P3MError (decode), as for a file.
    """

    def __init__(self, spec: str, *, name: str | None = None, hint: str | None = None, format: str | None = None,
                 options: dict[str, str] | None = None, hwaccel: Any = None, thread_type: str = "AUTO",
                 size: tuple[int, int] | None = None, reconnects: bool = False) -> None:
        self.name, self.reconnects = name or spec, reconnects
        try:
            self.container = open_input(spec, format=format, options=options, hwaccel=hwaccel)
        except (av.FFmpegError, OSError) as e:
            raise P3MError(f"cannot open {self.name}: {error_reason(e)}",
                           hint or "is it a video file (mp4, mkv, mov, webm, avi...) and not damaged?") from None
        try:
            self._start(hint, thread_type)
        except BaseException:
            self.container.close()
            raise
        upright = self._coded[::-1] if self.rotation in (90, 270) else self._coded
        self.width, self.height = size or upright
        # The size frames are converted to before turning them (swscale scales, numpy only turns).
        self._convert_size = (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)
        self.fps = stream_fps(self.stream)
        self.time_base = self.stream.time_base or 1 / self.fps
        self.frame_count = self._estimate_count()

    def _start(self, hint: str | None, thread_type: str) -> None:
        """Pick the video stream and decode its first frame; P3MErrors name what is missing."""
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams}) or ["no streams"]
            raise NoVideoStream(f"{self.name} has no video stream (found: {', '.join(kinds)})",
                           hint or "give a video file or an image sequence")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = thread_type
        ctx = self.stream.codec_context
        self._coded = (ctx.width, ctx.height)
        if not ctx.width or not ctx.height:
            raise P3MError(f"cannot read the video size of {self.name}", "the file may be damaged")
        self.damaged = 0                 # packets the decoder rejected (skipped, with a warning)
        self.count = 0                   # frames handed out so far
        self._frames = self._decode()
        try:
            self._first = next(self._frames, None)
        except (av.FFmpegError, OSError) as e:     # only an input that reconnects raises these
            raise P3MError(f"cannot read {self.name}: {error_reason(e)}", hint or "the file may be damaged") from None
        if self._first is None:
            raise P3MError(f"{self.name} has a video stream but no frame could be decoded",
                           "the file is empty or damaged")
        # Counter-clockwise quarter turns, as FFmpeg applies them by default (autorotate).
        self.rotation = round(self._first.rotation / 90) % 4 * 90
        if self.rotation:
            log.info("%s: display rotation %d°: the frames are turned upright", self.name, self.rotation)

    def _estimate_count(self) -> int | None:
        if self.stream.frames > 0:
            return int(self.stream.frames)
        if self.stream.duration and self.stream.time_base:
            return max(1, round(self.stream.duration * self.stream.time_base * self.fps))
        if self.container.duration:      # in AV_TIME_BASE (µs) units
            return max(1, round(self.container.duration / 1_000_000 * self.fps))
        return None

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Decoded frames; a packet the decoder rejects is skipped (and counted), a read error ends the input
        (after the frames the decoder holds) or, for an input that reconnects, is raised."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError as e:
                yield from self._flush()   # the frames the decoder still holds (reordering, threads)
                if self.reconnects:
                    raise
                log.warning("%s: reading stopped after %d frames: %s (the file may be truncated)",
                            self.name, self.count, error_reason(e))
                return
            if packet is None:
                return
            try:
                frames = packet.decode()
            except av.InvalidDataError as e:
                self.damaged += 1      # like FFmpeg: drop the damaged frame, keep going
                if self.damaged <= MAX_DAMAGE_WARNINGS:
                    log.warning("%s: skipped a damaged packet after %d frames (pts %s): %s",
                                self.name, self.count, packet.pts, error_reason(e))
                continue
            except av.FFmpegError as e:
                if self.reconnects:
                    raise
                raise P3MError(f"cannot decode {self.name} after {self.count} frames: {error_reason(e)}",
                               "the file may be truncated or damaged") from None
            yield from frames

    def _flush(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self.stream.decode(None)
        except av.FFmpegError:
            return

    def __iter__(self) -> Iterator[tuple[np.ndarray, av.VideoFrame]]:
        """(RGB image, the decoded frame for its times) pairs; iterate once. Warns at the end what was lost."""
        frames = self._frames if self._first is None else itertools.chain([self._first], self._frames)
        self._first = None
        turns = self.rotation // 90
        for decoded in frames:
            # Reformat to one size: a mid-stream resolution change must not reach stages.
            image = decoded.to_ndarray(format="rgb24", width=self._convert_size[0], height=self._convert_size[1])
            if turns:
                image = np.ascontiguousarray(np.rot90(image, turns))
            yield image, decoded
            self.count += 1
        if self.damaged > MAX_DAMAGE_WARNINGS:
            log.warning("%s: skipped %d damaged packets in all", self.name, self.damaged)
        if self.frame_count and self.count < 0.9 * self.frame_count - 1:
            log.warning("%s: the input ended after %d of the %d frames its header announces: "
                        "it may be truncated", self.name, self.count, self.frame_count)

    def close(self) -> None:
        """Stop decoding and close the input; safe to call twice."""
        try:
            self._frames.close()
        finally:
            self.container.close()
