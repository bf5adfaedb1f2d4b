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


# --- media that real files have been seen to hold (issue 17) ------------------------------------------------

def write_avi_with_b_frames(path: Path, *, frames: int = 30, codec: str = "libx264") -> Path:
    """An AVI of H.264 (or MPEG-4 Part 2) with B-frames: AVI stores no presentation times, so FFmpeg's
    guesses come out of the decoder in decode order (1, 3, 4, 2, ...)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "medium", "bf": "2"} if codec == "libx264" else {"bf": "2"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image(i), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def ac3_frames(count: int, bit_rate: int = 192_000) -> list[bytes]:
    """`count` AC3 frames (stereo, 48 kHz, 1536 samples each) of two tones."""
    encoder = av.CodecContext.create("ac3", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 48000, "stereo", "fltp", bit_rate
    packets = []
    for i in range(count):
        t = np.arange(1536) + i * 1536
        tones = (np.stack([np.sin(t / 20), np.cos(t / 30)]) * 0.3).astype(np.float32)
        chunk = av.AudioFrame.from_ndarray(tones, format="fltp", layout="stereo")
        chunk.sample_rate, chunk.pts = 48000, i * 1536
        packets += encoder.encode(chunk)
    packets += encoder.encode(None)
    return [bytes(p) for p in packets][:count]


def write_avi_with_ac3(path: Path, chunks: list[bytes], *, frames: int = 25) -> Path:
    """An AVI (MPEG-4 video) whose audio stream holds exactly `chunks` as its AC3 chunks, interleaved."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = out.add_stream("ac3", rate=48000)
        audio.layout, audio.bit_rate = "stereo", 192_000
        for i in range(max(frames, len(chunks))):
            if i < len(chunks):
                packet = av.Packet(chunks[i])
                packet.stream, packet.pts, packet.dts, packet.time_base = audio, i * 1536, i * 1536, Fraction(1, 48000)
                out.mux(packet)
            if i < frames:
                frame = av.VideoFrame.from_ndarray(image(i), format="rgb24")
                frame.pts = i
                out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def write_mjpeg_avi(path: Path, *, frames: int = 50, damaged: range | list[int] = (), audio: bool = True) -> Path:
    """An MJPEG AVI (every frame a JPEG) with AC3 sound as long as the video, whose `damaged` frames are zeroed
    (same size: the demuxer finds every packet, the decoder rejects those)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mjpeg", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuvj420p"
        sound = None
        if audio:
            sound = out.add_stream("ac3", rate=48000)
            sound.layout, sound.bit_rate = "stereo", 192_000
        tones = ac3_frames(round(frames / FPS * 48000 / 1536)) if sound is not None else []
        sent = 0
        for i in range(frames + 1):
            while sent < len(tones) and (i == frames or sent * 1536 / 48000 <= i / FPS):   # interleaved by time
                packet = av.Packet(tones[sent])
                packet.stream, packet.time_base = sound, Fraction(1, 48000)
                packet.pts = packet.dts = sent * 1536
                out.mux(packet)
                sent += 1
            if i == frames:
                break
            frame = av.VideoFrame.from_ndarray(image(i), format="rgb24").reformat(format="yuvj420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(_zeroed(packet, video, i) if i in damaged else packet)
        out.mux(video.encode(None))
    return path


def _zeroed(packet: av.Packet, stream: av.VideoStream, index: int) -> av.Packet:
    damaged = av.Packet(bytes(packet.size))
    damaged.stream, damaged.pts, damaged.dts, damaged.time_base = stream, index, index, Fraction(1, FPS)
    return damaged


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares `width`×`height` (its pixel data a stub): what a reader sees first."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))
    return path


def write_y4m_header(path: Path, width: int, height: int) -> Path:
    """A YUV4MPEG2 file that declares `width`×`height` and holds one tiny frame's worth of bytes."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(1000))
    return path
