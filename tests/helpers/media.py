"""Media made on the fly with PyAV: a small clip with a moving red square and a sine-wave AAC track, and
readers that decode what a test wrote."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stream.frames import Frame

W, H, N, FPS = 64, 48, 30, 25
RATE = 48000
RED = (255, 0, 0)


def square_image(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame `i`: a 12×12 red square moving right one pixel per frame over a dark blue background."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 2] = 80
    image[18:30, 4 + i:16 + i] = RED
    return image


def square_alpha(i: int, width: int = W, height: int = H) -> np.ndarray:
    """A matte for frame `i`: opaque square, a horizontal ramp on the left, zero elsewhere (float32)."""
    alpha = np.zeros((height, width), np.float32)
    alpha[:, :16] = np.linspace(0, 1, 16, dtype=np.float32)[None]
    alpha[14:34, 20 + i // 2:40 + i // 2] = 1.0
    return alpha


def write_clip(path: Path, *, frames: int = N, width: int = W, height: int = H, video: bool = True,
               audio: bool = True, keyframes_every: int | None = None) -> Path:
    """An H.264 (ultrafast) clip with an optional mono AAC 440 Hz sine the length of the video; a keyframe every
    `keyframes_every` frames (x264's default: 250)."""
    with av.open(str(path), "w") as out:
        if video:
            vs = out.add_stream("libx264", rate=FPS)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv444p" if width % 2 or height % 2 else "yuv420p"
            vs.options = {"preset": "ultrafast", **({"g": str(keyframes_every)} if keyframes_every else {})}
        if audio:
            aus = out.add_stream("aac", rate=RATE)
            aus.layout = "mono"
        if video:
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(square_image(i, width, height), format="rgb24")
                frame.pts = i
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        if audio:
            samples = int(RATE * frames / FPS)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = RATE, start
                out.mux(aus.encode(chunk))
            out.mux(aus.encode(None))
    return path


def synthetic_frames(pts: list[int | None], time_base: Fraction = Fraction(1, FPS)) -> list[Frame]:
    """Frames with the given timestamps (None, repeats, going back...), images from `square_image`."""
    return [Frame(index=i, image=square_image(i), pts=p, time_base=time_base) for i, p in enumerate(pts)]


def decoded_video(path: Path) -> list[av.VideoFrame]:
    """Every video frame of `path` (PyAV's default decoder)."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def decoded_rgba(path: Path) -> list[np.ndarray]:
    """The frames of a transparent file as uint8 H×W×4 RGBA (libvpx-vp9 for WebM, which keeps alpha)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "vp9":
            return [f.to_ndarray(format="rgba") for f in container.decode(stream)]
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [f for p in container.demux(stream) if p.size for f in decoder.decode(p)]
        frames += decoder.decode(None)
        assert frames and frames[0].format.name == "yuva420p"
        return [f.to_ndarray(format="rgba") for f in frames]


def decoded_alpha(path: Path) -> list[np.ndarray]:
    """The alpha planes of a transparent file as uint8 H×W."""
    return [rgba[..., 3] for rgba in decoded_rgba(path)]


def audio_packets(path: Path) -> tuple[int, int]:
    """(count, total bytes) of the first audio stream's packets."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(audio=0) if p.dts is not None and p.size]
    return len(packets), sum(p.size for p in packets)


def times(frames: list[av.VideoFrame]) -> np.ndarray:
    return np.array([float(f.pts * f.time_base) for f in frames])
