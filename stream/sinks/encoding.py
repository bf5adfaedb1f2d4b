"""Encoder settings by output kind and extension, and what every encoding sink shares: the pixels a sink of a
kind writes, the stream set-up (codec, NVENC choice, options, colour tags), the RGB → YUV conversion the tags
describe, and the rule that keeps timestamps rising.

    kind         .mp4             .mov                       .mkv                     .webm
    composite    H.264 yuv420p    H.264 yuv420p              H.264 yuv420p            VP9 yuv420p
    transparent  (refused)        ProRes 4444 yuva444p10le   FFV1 bgra (lossless)     VP9 yuva420p
    matte        H.264 of alpha   H.264 of alpha             FFV1 gray (lossless)     (refused)

Odd sizes: H.264 4:2:0 needs even width and height, so an odd-sized composite or matte gets one row or column
more (`pad`, the edge repeated: the default) or less (`crop`) at the bottom or right (`encoded_size`, `fit`);
4:4:4 would keep the size, but browsers and QuickTime do not play it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from model.errors import P3MError
from stream.frames import Frame, alpha_to_uint8
from stream.hwcodecs import Choice, pick_encoder

log = logging.getLogger(__name__)

Kind = Literal["composite", "transparent", "matte"]
ODD_SIZES = ("pad", "crop")      # how an odd-sized picture becomes even for H.264 4:2:0 (--odd-size)
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
BT709 = 1          # AVCOL_PRI/TRC_BT709: sRGB's primaries (and the usual transfer tag for them)
SMPTE170M = 6      # AVCOL_SPC_SMPTE170M: the BT.601 matrix we convert with, tagged so players invert the same one


def tag_bt601(ctx: av.codec.context.CodecContext) -> None:
    """Tag an encoder's output as what `yuv420p_frame` (and reformat with ITU601) writes: BT.601 matrix,
    limited range, sRGB's BT.709 primaries and transfer."""
    ctx.colorspace = SMPTE170M
    ctx.color_primaries = ctx.color_trc = BT709
    ctx.color_range = 1          # MPEG (limited) range


def yuv420p_frame(rgb: np.ndarray) -> av.VideoFrame:
    """An H×W×3 uint8 RGB image (even sizes) as a yuv420p frame, converted by OpenCV with the GIL released,
    where PyAV's reformat (swscale) holds it, and is slower, while every other thread waits."""
    return av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")


@dataclass(frozen=True)
class VideoFormat:
    """One encoder setting: codec, pixel format and default options (overridable per sink)."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    lossless: bool = False

    @property
    def bt601_yuv(self) -> bool:
        """Frames go to it as YUV that we convert (BT.601, limited range; the stream is tagged so)."""
        return not self.lossless and self.pix_fmt.startswith("yuv")


H264 = VideoFormat("libx264", "yuv420p", {"crf": "18", "preset": "medium"})
# libvpx: row-mt and tile columns (log2; clamped to the width) let its threads share a frame
VP9 = VideoFormat("libvpx-vp9", "yuv420p", {"crf": "30", "b": "0", "row-mt": "1", "tile-columns": "2",
                                            "cpu-used": "4"})
VP9_ALPHA = VideoFormat("libvpx-vp9", "yuva420p", VP9.options)
# --preset names x264's speeds; VP9 gets the libvpx settings of about the same place on its own scale:
# realtime (one pass, no look-ahead; cpu-used 5-8) for the fast ones, good for medium and slower.
VP9_PRESETS: dict[str, dict[str, str]] = {
    "ultrafast": {"deadline": "realtime", "cpu-used": "8"},
    "superfast": {"deadline": "realtime", "cpu-used": "8"},
    "veryfast": {"deadline": "realtime", "cpu-used": "7"},
    "faster": {"deadline": "realtime", "cpu-used": "6"},
    "fast": {"deadline": "realtime", "cpu-used": "5"},
    "medium": {"deadline": "good", "cpu-used": "4"},
    "slow": {"deadline": "good", "cpu-used": "3"},
    "slower": {"deadline": "good", "cpu-used": "2"},
    "veryslow": {"deadline": "good", "cpu-used": "1"},
}
PRORES_4444 = VideoFormat("prores_ks", "yuva444p10le", {"profile": "4444", "vendor": "apl0"})
FFV1_RGBA = VideoFormat("ffv1", "bgra", {"level": "3", "slices": "4"}, lossless=True)
FFV1_GRAY = VideoFormat("ffv1", "gray", {"level": "3", "slices": "4"}, lossless=True)
FORMATS: dict[tuple[Kind, str], VideoFormat] = {
    ("composite", ".mp4"): H264, ("composite", ".mov"): H264, ("composite", ".mkv"): H264,
    ("composite", ".webm"): VP9,
    ("transparent", ".webm"): VP9_ALPHA, ("transparent", ".mov"): PRORES_4444, ("transparent", ".mkv"): FFV1_RGBA,
    ("matte", ".mp4"): H264, ("matte", ".mov"): H264, ("matte", ".mkv"): FFV1_GRAY,
}


def supported(kind: Kind) -> str:
    """The outputs a kind can go to, for error messages."""
    exts = [ext for (k, ext) in FORMATS if k == kind]
    return ", ".join(exts) + " or a PNG sequence (out/%05d.png or a folder)"


def video_format(kind: Kind, path: str) -> VideoFormat:
    """The format a `kind` video file at `path` gets; P3MError for an extension the kind cannot go to."""
    ext = Path(path).suffix.lower()
    fmt = FORMATS.get((kind, ext))
    if fmt is None:
        raise P3MError(f"cannot write a {kind} video to '{ext or path}'", f"{kind} output goes to {supported(kind)}")
    return fmt


def encoded_size(fmt: VideoFormat, width: int, height: int, odd_size: str = "pad") -> tuple[int, int]:
    """The size `fmt` encodes a width×height picture at: even for H.264 4:2:0 (an odd side one pixel longer
    for `pad`, shorter for `crop`; a side of 1 is always padded), else the picture's own."""
    if fmt.codec != "libx264":          # VP9 4:2:0 takes odd sizes; ProRes 4444 and FFV1 have no subsampling
        return width, height

    def even(n: int) -> int:
        return n if n % 2 == 0 else n + 1 if odd_size == "pad" or n == 1 else n - 1
    return even(width), even(height)


def fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """`pixels` cropped or padded (its last row or column repeated) at the bottom and right to width×height,
    so the picture keeps its place."""
    cropped = pixels[:height, :width]
    bottom, right = height - cropped.shape[0], width - cropped.shape[1]
    if bottom or right:
        return cv2.copyMakeBorder(cropped, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(cropped)


def sink_pixels(frame: Frame, kind: Kind, width: int, height: int) -> tuple[np.ndarray, str]:
    """The array a sink of `kind` writes for `frame` (contiguous), with its PyAV pixel format: the matte, or
    the frame's pixels with its alpha added for a transparent sink. ValueError when the frame cannot give it."""
    if kind == "matte":
        alpha = frame.alpha
        if alpha is None and frame.output is not None and frame.output.ndim == 3 and frame.output.shape[2] == 4:
            pixels = frame.output[..., 3]
        elif alpha is None:
            raise ValueError(f"frame {frame.index} has no alpha: a matting stage must run before a matte sink")
        else:
            pixels = alpha if alpha.dtype == np.uint8 else alpha_to_uint8(alpha)
        fmt = "gray"
    else:
        pixels = frame.pixels
        channels = pixels.shape[2] if pixels.ndim == 3 else 0
        if kind == "transparent" and channels == 3 and frame.alpha is not None:
            pixels = np.dstack([pixels, alpha_to_uint8(frame.alpha)])
        elif kind == "transparent" and channels != 4:
            raise ValueError(f"frame {frame.index}: a transparent sink needs an RGBA output or an alpha")
        elif kind == "composite" and channels != 3:
            raise ValueError(f"frame {frame.index}: a composite sink needs an H×W×3 output, got {pixels.shape}")
        fmt = "rgba" if kind == "transparent" else "rgb24"
    if pixels.shape[:2] != (height, width):
        raise ValueError(f"frame {frame.index} is {pixels.shape[1]}x{pixels.shape[0]}, the sink {width}x{height}")
    return np.ascontiguousarray(pixels), fmt


def add_video_stream(container: av.container.OutputContainer, fmt: VideoFormat, *, width: int, height: int,
                     fps: Fraction, time_base: Fraction, crf: int | None = None, preset: str | None = None,
                     options: Mapping[str, str] | None = None, bit_rate: int | None = None, hardware: bool = False,
                     low_latency: bool = False) -> tuple[av.VideoStream, Choice]:
    """Add a `fmt` video stream to `container`, with NVENC in its place where it opens (`hardware`), and return
    it with the encoder chosen. `options` go over the format's own (and x264's `crf`/`preset`)."""
    choice = pick_encoder(fmt.codec, width, height, fmt.pix_fmt, crf=crf, preset=preset, hardware=hardware)
    codec, opts = (choice.name, dict(choice.options)) if choice.hardware else (fmt.codec, dict(fmt.options))
    if codec == "libx264":      # crf/preset are x264's scales; VP9 keeps its crf and maps the preset
        opts.update({k: str(v) for k, v in (("crf", crf), ("preset", preset)) if v is not None})
    elif codec == "libvpx-vp9" and preset is not None:
        opts.update(VP9_PRESETS.get(preset, {}))
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, fmt.pix_fmt
    stream.time_base = stream.codec_context.time_base = time_base
    if not low_latency:
        # frame threads hold back a frame per thread: throughput for a file, delay for a live stream
        stream.thread_type = "AUTO"
    if bit_rate is not None:
        stream.bit_rate = bit_rate
    if fmt.bt601_yuv:
        tag_bt601(stream.codec_context)
    stream.options = {**opts, **(options or {})}
    return stream, choice


def video_frame(pixels: np.ndarray, layout: str, fmt: VideoFormat) -> av.VideoFrame:
    """`pixels` (contiguous, PyAV pixel format `layout`) as the frame an encoder of `fmt` takes, converted as
    `add_video_stream` tags the stream."""
    height, width = pixels.shape[:2]
    if fmt.pix_fmt == "yuv420p" and fmt.bt601_yuv and layout == "rgb24" and width % 2 == 0 and height % 2 == 0:
        return yuv420p_frame(pixels)
    if fmt.bt601_yuv:
        # swscale writes a new frame, so the pixels are wrapped, not copied (from_ndarray's copy holds the GIL)
        return av.VideoFrame.from_numpy_buffer(pixels, format=layout).reformat(
            format=fmt.pix_fmt, dst_colorspace="ITU601", dst_color_range="MPEG")
    return av.VideoFrame.from_ndarray(pixels, format=layout)     # a copy: the encoder may keep the frame


class Clock:
    """Output pts: the input's while they rise; a frame whose pts is missing or not above the last one gets the
    last one plus a frame (one warning naming `name`, the input): never renumbered from the frame index, so
    the frames after a gap or a dropped frame keep their times and the sound stays in sync."""

    def __init__(self, time_base: Fraction, fps: Fraction, name: str) -> None:
        self.time_base, self.name = time_base, name
        self.step = max(1, round(1 / (fps * time_base)))
        self.last: int | None = None
        self.warned = False

    def next(self, frame: Frame) -> int:
        """The pts (in `time_base`) of `frame`, always above the last one returned."""
        pts = frame.pts
        if pts is not None and frame.time_base is not None and frame.time_base != self.time_base:
            pts = round(pts * frame.time_base / self.time_base)
        if pts is None or (self.last is not None and pts <= self.last):
            if not self.warned:
                self.warned = True
                why = "missing" if pts is None else f"not increasing ({pts} after {self.last})"
                log.warning("%s: timestamps %s at frame %d: such frames get the previous time plus one frame",
                            self.name, why, frame.index)
            pts = 0 if self.last is None else self.last + self.step
        self.last = pts
        return pts
