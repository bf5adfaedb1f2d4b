"""A demo clip made from a packaged portrait (scikit-image's astronaut), with a sine-wave sound track."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from stream.sources.synthetic import portrait


def make_demo_clip(path: str | Path, seconds: float = 3.0, size: tuple[int, int] = (854, 480),
                   fps: int = 30, tone_hz: float = 440.0) -> Path:
    """Write an H.264 + AAC clip: the portrait drifting across a backdrop, a tone on the audio track."""
    width, height = size
    person = cv2.resize(portrait(), (height, height), interpolation=cv2.INTER_AREA)
    backdrop = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    n_frames = round(seconds * fps)
    path = Path(path)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "20"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(n_frames):
            x = int((width - height) * (0.5 + 0.5 * np.sin(2 * np.pi * i / n_frames)))
            frame = backdrop.copy()
            frame[:, x:x + height] = person
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        _write_tone(out, audio, seconds, tone_hz)
        out.mux(video.encode())
    return path


def _write_tone(out: av.container.OutputContainer, audio: av.AudioStream, seconds: float, hz: float) -> None:
    rate, chunk = 48000, 1024
    t = np.arange(round(seconds * rate)) / rate
    samples = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    for start in range(0, len(samples), chunk):
        frame = av.AudioFrame.from_ndarray(samples[None, start:start + chunk], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(audio.encode(frame))
    out.mux(audio.encode())
