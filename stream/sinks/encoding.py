"""Encoder settings by output kind and extension, and the RGB → YUV conversion and colour tags we encode with.

    kind         .mp4             .mov                       .mkv                     .webm
    composite    H.264 yuv420p    H.264 yuv420p              H.264 yuv420p            VP9 yuv420p
    transparent  (refused)        ProRes 4444 yuva444p10le   FFV1 bgra (lossless)     VP9 yuva420p
    matte        H.264 of alpha   H.264 of alpha             FFV1 gray (lossless)     (refused)

Odd sizes: H.264 4:2:0 needs even width and height, so an odd-sized composite or matte is encoded as
H.264 4:4:4 (yuv444p, High 4:4:4 profile) at its exact size, with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from model.errors import P3MError

Kind = Literal["composite", "transparent", "matte"]
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
    """An H×W×3 uint8 RGB image (even sizes) as a yuv420p frame, converted by OpenCV: 0.5 ms at 1080p with the
    GIL released, where PyAV's reformat (swscale) takes 4.2 ms holding it while every other thread waits."""
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
VP9 = VideoFormat("libvpx-vp9", "yuv420p", {"crf": "30", "b": "0", "row-mt": "1", "cpu-used": "4"})
VP9_ALPHA = VideoFormat("libvpx-vp9", "yuva420p", {"crf": "30", "b": "0", "row-mt": "1", "cpu-used": "4"})
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


def video_format(kind: Kind, path: str, width: int, height: int) -> VideoFormat:
    """The format a `kind` video file at `path` gets at this size (H.264 4:4:4 for odd sizes); P3MError for
    an extension the kind cannot go to."""
    ext = Path(path).suffix.lower()
    fmt = FORMATS.get((kind, ext))
    if fmt is None:
        raise P3MError(f"cannot write a {kind} video to '{ext or path}'", f"{kind} output goes to {supported(kind)}")
    if fmt.codec == "libx264" and (width % 2 or height % 2):
        return VideoFormat(fmt.codec, "yuv444p", fmt.options)
    return fmt
