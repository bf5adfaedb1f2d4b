"""The reference rows of the pipeline benchmarks: what decoding alone, and decoding + encoding alone, cost."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av


def decode_only(path: Path, hwaccel: Any = None, decoder: str | None = None) -> int:
    """Frames decoded and converted to RGB: FFmpeg's CPU decoder (threads), NVDEC (hwaccel) or a named one."""
    kwargs = {"hwaccel": hwaccel} if hwaccel is not None else {}
    n = 0
    with av.open(str(path), **kwargs) as container:
        stream = container.streams.video[0]
        if decoder is None:
            stream.thread_type = "AUTO"
            frames: Iterator[av.VideoFrame] = container.decode(stream)
        else:
            ctx = av.CodecContext.create(decoder, "r")
            if stream.codec_context.extradata:
                ctx.extradata = stream.codec_context.extradata
            frames = (f for packet in container.demux(stream) for f in [*ctx.decode(packet)])
        for frame in frames:
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def decode_encode(path: Path, out: Path, encoder: str, options: dict[str, str]) -> int:
    """Decode (CPU threads) + RGB + encode, nothing else: the floor of the cut-out's cost."""
    n = 0
    with av.open(str(path)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        vout = dst.add_stream(encoder, rate=vin.average_rate, options=options)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.thread_type = "AUTO"
        for frame in src.decode(vin):
            rgb = frame.to_ndarray(format="rgb24")
            dst.mux(vout.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            n += 1
        dst.mux(vout.encode())
    return n
