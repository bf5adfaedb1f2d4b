"""The one decoding path for videos: a file, URL or device demuxed and decoded by PyAV into upright RGB
images of one size. The cut-out's input (stream/sources/files.py), the live camera's files, URLs and
devices (stream/sources/camera.py) and video backgrounds (stream/stages/backgrounds.py) all read through it.

Damaged input is handled as FFmpeg does: a packet the decoder rejects is skipped with a warning (counted), a
read error or a short file ends the input with a warning, and a display matrix (phone videos) turns the
frames upright (flips are not applied).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np

from model.errors import P3MError
from model.imageio import MAX_PIXELS
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
        start: seconds to skip: a seek to the keyframe before, then frames before `start` decoded and dropped
            (frame-accurate); a start past the last frame is a P3MError.
    """

    def __init__(self, spec: str, *, name: str | None = None, hint: str | None = None, format: str | None = None,
                 options: dict[str, str] | None = None, hwaccel: Any = None, thread_type: str = "AUTO",
                 size: tuple[int, int] | None = None, reconnects: bool = False, start: float = 0.0) -> None:
        self.name, self.reconnects, self.start = name or spec, reconnects, start
        _check_y4m_header(spec, self.name)
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
        if ctx is None:              # FFmpeg has no decoder for it (a damaged header can name any codec)
            raise P3MError(f"{self.name}: its video stream names a codec FFmpeg cannot decode",
                           "the file may be damaged")
        self._coded = (ctx.width, ctx.height)
        if not ctx.width or not ctx.height:
            raise P3MError(f"cannot read the video size of {self.name}", "the file may be damaged")
        _check_size(ctx.width, ctx.height, self.name)
        self.damaged = 0                 # packets the decoder rejected (skipped, with a warning)
        self.count = 0                   # frames handed out so far
        self.missing = MissingFrames()   # packets that gave no frame: counted, with their times
        self._reordered = False
        self.skipped = 0                 # frames decoded before `start` and dropped
        self._frames = self._in_time_order(self._decode())
        if self.start > 0:
            self._frames = self._from_start(self._frames)
        try:
            self._first = next(self._frames, None)
        except (av.FFmpegError, OSError) as e:     # only an input that reconnects raises these
            raise P3MError(f"cannot read {self.name}: {error_reason(e)}", hint or "the file may be damaged") from None
        if self._first is None:
            raise P3MError(f"{self.name} has a video stream but no frame could be decoded",
                           "the file is empty or damaged")
        self.first_pts: int | None = self._first.pts
        # Counter-clockwise quarter turns, as FFmpeg applies them by default (autorotate).
        self.rotation = round(self._first.rotation / 90) % 4 * 90
        if self.rotation:
            log.info("%s: display rotation %d°: the frames are turned upright", self.name, self.rotation)

    def _from_start(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """`frames` from the first at or after `start`: a seek to the keyframe before it (where the input seeks),
        then the frames before it dropped. Nothing at or after it: a P3MError naming the input's last time."""
        time_base = self.stream.time_base or Fraction(1, 1_000_000)
        first = round(self.start / time_base) + (self.stream.start_time or 0)
        try:
            self.container.seek(first, stream=self.stream, backward=True)
        except (av.FFmpegError, OSError) as e:     # a pipe or a live stream: decode from the beginning instead
            log.info("%s: cannot seek (%s): decoding from the start up to %.3f s", self.name, error_reason(e),
                     self.start)
        last = None
        for frame in frames:
            if frame.pts is None or frame.pts >= first:
                yield frame
                yield from frames
                return
            last = frame.pts
            self.skipped += 1
        end = "" if last is None else f" (its last frame is at {float(last * time_base):.3f} s)"
        raise P3MError(f"the start, {self.start:g} s, is past the end of {self.name}{end}",
                       "give a time within the video")

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
            if packet.size:
                self.missing.sent(packet.pts)
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

    def _in_time_order(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """The decoded frames (in the decoder's order, which is display order) with their presentation times
        in rising order: where a container stores no presentation times (AVI with B-frames), FFmpeg's guesses
        come out in decode order, so each frame takes the earliest time among the next few (the decoder's
        reorder depth). Frames with times that already rise keep them; each time is matched to a packet."""
        window: list[av.VideoFrame] = []
        times: list[int] = []
        depth: int | None = None
        for frame in frames:
            if depth is None:              # known once the decoder has seen the stream
                depth = min(16, max(0, int(getattr(self.stream.codec_context, "reorder_depth", 0) or 0)))
            window.append(frame)
            if frame.pts is not None:
                heapq.heappush(times, frame.pts)
            if len(window) > depth:
                yield self._timed(window.pop(0), times)
        while window:
            yield self._timed(window.pop(0), times)

    def _timed(self, frame: av.VideoFrame, times: list[int]) -> av.VideoFrame:
        if frame.pts is not None:
            earliest = heapq.heappop(times)
            if earliest != frame.pts and not self._reordered:
                self._reordered = True
                log.info("%s: timestamps come in decode order (an AVI with B-frames?): each frame takes the "
                         "presentation time in order", self.name)
            frame.pts = earliest
        self.missing.received(frame.pts)
        return frame

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
        if self.missing.count:
            log.warning("%s: %d input frame%s could not be decoded (%s): they are missing from the output, the "
                        "others keep their times (the sound stays in sync)", self.name, self.missing.count,
                        "s" if self.missing.count > 1 else "", self.missing.describe(self.time_base, self.fps))
        if self.frame_count and not self.start and self.count < 0.9 * self.frame_count - 1:
            log.warning("%s: the input ended after %d of the %d frames its header announces: "
                        "it may be truncated", self.name, self.count, self.frame_count)

    @property
    def dropped(self) -> int:
        """Input frames that never came out of the decoder (damaged or undecodable packets), so far."""
        return self.missing.count

    def dropped_before(self, pts: int) -> int:
        """`dropped`, for a read that stopped at the frame at `pts`: the packets still in the decoder not counted."""
        return self.missing.before(pts)

    def close(self) -> None:
        """Stop decoding and close the input; safe to call twice."""
        try:
            self._frames.close()
        finally:
            self.container.close()


class MissingFrames:
    """Packets sent to the decoder that never came back as a frame: how many, and when (their times)."""

    def __init__(self) -> None:
        self.packets = 0
        self.frames = 0
        self._waiting: set[int] = set()     # the times of packets whose frame has not come out (yet)

    def sent(self, pts: int | None) -> None:
        self.packets += 1
        if pts is not None:
            self._waiting.add(pts)

    def received(self, pts: int | None) -> None:
        self.frames += 1
        self._waiting.discard(pts)

    @property
    def count(self) -> int:
        return max(0, self.packets - self.frames)

    def before(self, pts: int) -> int:
        """Missing frames timed before `pts` (an input read only up to there: the later ones are in flight)."""
        return sum(1 for t in self._waiting if t < pts)

    def describe(self, time_base: Fraction, fps: Fraction) -> str:
        """The missing frames' times as ranges ("at 1.20 s, 3.04-3.80 s"), or "times unknown"."""
        times = sorted(self._waiting)
        if not times:
            return "times unknown"
        runs: list[list[int]] = [[times[0], times[0]]]
        step = max(1, round(1.5 / (fps * time_base)))      # neighbours: up to 1.5 frame durations apart
        for pts in times[1:]:
            if pts - runs[-1][1] <= step:
                runs[-1][1] = pts
            else:
                runs.append([pts, pts])
        seconds = lambda pts: f"{float(pts * time_base):.2f}"      # noqa: E731
        shown = [f"at {seconds(a)} s" if a == b else f"{seconds(a)}-{seconds(b)} s" for a, b in runs[:5]]
        return ", ".join(shown) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")


def _check_size(width: int, height: int, name: str) -> None:
    """P3MError for frames over model/imageio.py's MAX_PIXELS (before the first is decoded)."""
    if width * height > MAX_PIXELS:
        raise P3MError(f"{name} is {width}x{height}: over the limit of {MAX_PIXELS // 1_000_000} megapixels "
                       "(8192x8192)", "scale it down first, e.g. ffmpeg -i in.mp4 -vf scale=3840:-2 out.mp4")


def _check_y4m_header(spec: str, name: str) -> None:
    """A YUV4MPEG2 file's declared size, checked before FFmpeg opens it: FFmpeg's frame-size arithmetic
    overflows for huge ones and fails with an unrelated error ("Device or resource busy")."""
    if not os.path.isfile(spec):
        return                     # a URL, a device, a pipe: FFmpeg reports those (reading would take their data)
    try:
        with open(spec, "rb") as file:
            header = file.read(256)
    except OSError:
        return
    if not header.startswith(b"YUV4MPEG2 "):
        return
    fields = header.split(b"\n", 1)[0].split()[1:]
    size = {f[:1]: f[1:] for f in fields if f[:1] in (b"W", b"H")}
    try:
        width, height = int(size[b"W"]), int(size[b"H"])
    except (KeyError, ValueError):
        raise P3MError(f"{name}: a YUV4MPEG2 header without a valid size", "the file is damaged") from None
    _check_size(width, height, name)
