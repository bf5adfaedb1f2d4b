"""Small, deterministic bad and odd media for the robustness tests, made with PyAV in milliseconds."""
from __future__ import annotations

import os
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

W, H, FPS = 64, 48, 25
RED = (255, 0, 0)


def image(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame `i`: dark blue, a red 8×8 square moving right, a white marker in the top-left corner."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 2] = 80
    x = i % max(1, width - 8)
    pixels[height // 4:height // 4 + 8, x:x + 8] = RED
    pixels[:max(1, height // 6), :max(1, width // 6)] = 255
    return pixels


def write_clip(path: Path, *, frames: int = 20, width: int = W, height: int = H, pix_fmt: str = "",
               pts_ms: list[int] | None = None, rotation: int | None = None, faststart: bool = False,
               codec: str = "libx264") -> Path:
    """A small clip (H.264 ultrafast unless `codec`); `pts_ms` makes it variable-rate, `rotation` adds a
    display matrix (counter-clockwise degrees, as phones write it), `faststart` puts the index first."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=FPS)
        odd = width % 2 or height % 2
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuv444p" if odd else "yuv420p")
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, FPS)
        stream.time_base = stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image(i, width, height), format="rgb24")
            frame.pts, frame.time_base = (pts_ms[i] if pts_ms is not None else i), time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """A mono AAC file without video."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "mono"
        for start in range(0, int(48000 * seconds), 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return path


def write_frameless(path: Path, codec: str = "rawvideo", pix_fmt: str = "rgb24") -> Path:
    """A container whose header declares a video stream (size and all) but which holds no frame."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        out.start_encoding()
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def corrupt_packet(src: Path, dst: Path, index: int) -> Path:
    """A copy of `src` whose video packet `index` has its payload bytes inverted (the 4-byte NAL length and
    the NAL header kept, so the demuxer still finds every packet and only the decoder sees the damage)."""
    with av.open(str(src)) as container:
        packet = [p for p in container.demux(video=0) if p.size][index]
        pos, size = packet.pos, packet.size
    data = bytearray(src.read_bytes())
    for i in range(pos + 5, pos + size):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def decode(path: Path) -> list[av.VideoFrame]:
    """Every video frame of `path`; raises if the file is not a finalised, decodable video."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def frame_times(path: Path) -> list[float]:
    return [float(f.pts * f.time_base) for f in decode(path)]


# --- checkpoints ---------------------------------------------------------------------------------------

class CreatesAFile:
    """Unpickling this calls open(marker, "w"): a checkpoint that would run code on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def official_shapes() -> dict[str, torch.Size]:
    """P3M-Net R34's 713 official keys and shapes, built on the meta device (no memory, no time)."""
    from model.p3mnet.checkpoint import official_state_dict
    from model.p3mnet.network import P3MNet

    with torch.device("meta"):
        net = P3MNet()
    return {k: v.shape for k, v in official_state_dict(net).items()}


def write_checkpoints(folder: Path, marker: Path) -> dict[str, Path]:
    """The bad checkpoints of the matrix, by case name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.pth" for name in
             ("text", "truncated", "pickled_code", "raw_pickle", "other_model", "wrong_shapes")}
    paths["text"].write_text("this is a README, not a checkpoint\n")
    # Right names, wrong architecture: every official key, each a 1-element tensor (e.g. another width).
    torch.save({"state_dict": {k: torch.zeros(1) for k in official_shapes()}}, paths["wrong_shapes"])
    truncate(paths["wrong_shapes"], paths["truncated"])
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 1, 1))
    torch.save({"state_dict": other.state_dict()}, paths["other_model"])
    torch.save({"state_dict": CreatesAFile(marker)}, paths["pickled_code"])
    paths["raw_pickle"].write_bytes(pickle.dumps({"state_dict": CreatesAFile(marker)}, protocol=4))
    assert not os.path.exists(marker)
    return paths
