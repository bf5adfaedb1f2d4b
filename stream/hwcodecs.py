"""NVIDIA's hardware video codecs when this PyAV build and the driver offer them, else the CPU codecs.

NVENC (`h264_nvenc`, `hevc_nvenc`) stands in for libx264/libx265, NVDEC (FFmpeg's CUDA hwaccel, with a
software fallback per stream; `h264_cuvid` is probed too, for the benchmark) for the CPU decoders. A
PyAV wheel lists these codecs even where no driver can run them, so each is probed once per process
by really opening it and coding a few tiny frames; the answer is cached. A failed NVENC probe is slow, so
the offline job starts it (`prefetch_encoder`) before it loads the model, and the sink finds the answer
ready. Nothing here raises because hardware is missing: the caller gets the CPU codec. Sources and sinks
keep the `Choice` they got (`decoder`, `encoder`), and the offline job logs them in one line (`describe`).
"""
from __future__ import annotations

import functools
import io
import logging
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

HARDWARE_ENCODERS: dict[str, tuple[str, ...]] = {"libx264": ("h264_nvenc",), "libx265": ("hevc_nvenc",)}
HARDWARE_DECODERS: dict[str, tuple[str, ...]] = {"h264": ("h264_cuvid",)}    # probed with an H.264 clip
HARDWARE_PIX_FMTS = ("yuv420p", "nv12")
# x264 preset → NVENC preset (p1 fastest … p7 best).
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7"}
_PROBE_SIZE = (320, 240)


@dataclass(frozen=True)
class Probe:
    """Whether a codec really runs here; `detail` says why not."""

    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return self.name if self.ok else f"{self.name} ({self.detail})"


def nvenc_options(crf: int | None = None, preset: str | None = None) -> dict[str, str]:
    """NVENC options for x264's `crf` and `preset`: constant quality (vbr, cq = crf) at the matching speed."""
    options = {"rc": "vbr", "b": "0", "preset": NVENC_PRESETS.get(preset or "medium", "p4"), "tune": "hq"}
    options["cq"] = str(crf if crf is not None else 23)
    return options


_encoder_probes = threading.Lock()     # one encoder probe at a time: a second caller waits for the answer


def probe_encoder(name: str, width: int = _PROBE_SIZE[0], height: int = _PROBE_SIZE[1],
                  pix_fmt: str = "yuv420p") -> Probe:
    """Open encoder `name` for a width×height `pix_fmt` stream and encode a few frames (cached). Thread-safe:
    a call while a background probe of the same codec runs waits for its answer instead of probing again."""
    with _encoder_probes:
        return _probe_encoder(name, width, height, pix_fmt)


def prefetch_encoder(codec: str, width: int, height: int, pix_fmt: str) -> threading.Thread | None:
    """Start, on a background thread, the probes `pick_encoder(codec, width, height, pix_fmt)` will make, so
    they run while the caller does slower work; returns the thread (None when nothing would be probed)."""
    names, _ = hardware_candidates(codec, width, height, pix_fmt)
    if not names:
        return None
    thread = threading.Thread(target=lambda: [probe_encoder(n, width, height, pix_fmt) for n in names],
                              name="p3m-codec-probe", daemon=True)
    thread.start()
    return thread


@functools.cache
def _probe_encoder(name: str, width: int, height: int, pix_fmt: str) -> Probe:
    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
        ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
        ctx.open()
        packets = 0
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(_pattern(i, width, height), format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            packets += len(ctx.encode(frame))
        packets += len(ctx.encode(None))
    except Exception as e:  # noqa: BLE001 - unknown codec, no driver, no device, refused size: all mean "no"
        return Probe(name, False, _reason(e))
    return Probe(name, True) if packets else Probe(name, False, "opened, but encoded nothing")


@functools.cache
def probe_decoder(name: str) -> Probe:
    """Decode a tiny in-memory H.264 clip with decoder `name` (e.g. h264_cuvid), cached."""
    try:
        with av.open(io.BytesIO(_tiny_h264()), "r") as container:
            stream = container.streams.video[0]
            ctx = av.CodecContext.create(name, "r")
            if stream.codec_context.extradata:
                ctx.extradata = stream.codec_context.extradata
            # demux ends with an empty packet, which flushes the decoder
            frames = [f for packet in container.demux(stream) for f in ctx.decode(packet)]
            images = [f.to_ndarray(format="rgb24") for f in frames]
    except Exception as e:  # noqa: BLE001
        return Probe(name, False, _reason(e))
    return Probe(name, True) if images else Probe(name, False, "opened, but decoded nothing")


@functools.cache
def probe_nvdec() -> Probe:
    """Decode a tiny in-memory H.264 clip through FFmpeg's CUDA hwaccel without software fallback (cached)."""
    name = "nvdec (cuda hwaccel)"
    try:
        from av.codec.hwaccel import HWAccel
    except ImportError:
        return Probe(name, False, f"PyAV {av.__version__} has no hwaccel API")
    try:
        hwaccel = HWAccel("cuda", allow_software_fallback=False)
        with av.open(io.BytesIO(_tiny_h264()), "r", hwaccel=hwaccel) as container:
            stream = container.streams.video[0]
            images = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            on_device = bool(getattr(stream.codec_context, "is_hwaccel", False))
    except Exception as e:  # noqa: BLE001
        return Probe(name, False, _reason(e))
    if not images:
        return Probe(name, False, "opened, but decoded nothing")
    return Probe(name, True) if on_device else Probe(name, False, "the decoder did not use the device")


@dataclass(frozen=True)
class Choice:
    """The codec a stream got: `name`, on the GPU or not, why, and what opening it needs."""

    name: str
    hardware: bool
    why: str = ""
    options: dict[str, str] = field(default_factory=dict)   # a hardware encoder's options
    hwaccel: Any = None                                      # a hardware decoder's av.open(hwaccel=...)

    def __str__(self) -> str:
        return f"{self.name} ({'GPU' if self.hardware else 'CPU'}{'; ' + self.why if self.why else ''})"


def pick_encoder(codec: str, width: int, height: int, pix_fmt: str, *, crf: int | None = None,
                 preset: str | None = None, hardware: bool = True) -> Choice:
    """NVENC in place of CPU encoder `codec` when it really opens here at this size, else `codec` itself.

    Hardware is tried for 8-bit 4:2:0 H.264/HEVC only, at the stream's own size (probed once per size)."""
    if not hardware:
        return Choice(codec, False, "hardware codecs off" if codec in HARDWARE_ENCODERS else "")
    candidates, why_none = hardware_candidates(codec, width, height, pix_fmt)
    if not candidates:
        return Choice(codec, False, why_none)
    failed = []
    for name in candidates:
        probe = probe_encoder(name, width, height, pix_fmt)
        if probe.ok:
            return Choice(name, True, f"instead of {codec}", options=nvenc_options(crf, preset))
        failed.append(str(probe))
    # debug only: on a machine without a GPU the reasons ("Operation not permitted") say nothing useful
    log.debug("hardware encoders unavailable: %s", "; ".join(failed))
    return Choice(codec, False)


def hardware_candidates(codec: str, width: int, height: int, pix_fmt: str) -> tuple[tuple[str, ...], str]:
    """The hardware encoders worth probing for CPU encoder `codec` at this size and pixel format, or none and
    why ("" when `codec` has no hardware counterpart)."""
    candidates = HARDWARE_ENCODERS.get(codec, ())
    if candidates and (pix_fmt not in HARDWARE_PIX_FMTS or width % 2 or height % 2):
        return (), f"NVENC not tried for {pix_fmt} {width}x{height}"
    return candidates, ""


def pick_decoder(*, hardware: bool = True) -> Choice:
    """NVDEC (FFmpeg's CUDA hwaccel, falling back to software for streams it cannot decode) when it really
    decodes here, else FFmpeg's CPU decoders (threaded)."""
    if not hardware:
        return Choice("CPU decoder", False, "NVDEC only with hw_codecs all")
    probe = probe_nvdec()
    if not probe.ok:
        log.debug("NVDEC unavailable: %s", probe.detail)
        return Choice("CPU decoder", False, f"NVDEC unavailable: {probe.detail}")
    from av.codec.hwaccel import HWAccel

    return Choice("NVDEC", True, "CPU for streams it cannot decode",
                  hwaccel=HWAccel("cuda", allow_software_fallback=True))


def describe(source: object, sink: object) -> str:
    """One log line for a job: the decoder and encoder(s) its source and sink(s) recorded."""
    decoder = getattr(source, "decoder", None)
    sinks = getattr(sink, "sinks", [sink])
    encoders = [str(s.encoder) for s in sinks if getattr(s, "encoder", None) is not None]
    return (f"decode with {decoder or 'an image reader'}; "
            f"encode with {', '.join(encoders) if encoders else 'an image writer'}")


def report() -> dict[str, Probe]:
    """Every hardware codec probed (for benchmarks and bug reports)."""
    probes = [probe_encoder(name) for names in HARDWARE_ENCODERS.values() for name in names]
    probes += [probe_decoder(name) for names in HARDWARE_DECODERS.values() for name in names]
    probes.append(probe_nvdec())
    return {p.name: p for p in probes}


def _pattern(i: int, width: int, height: int) -> np.ndarray:
    """A moving gradient: real content for an encoder (never all zeros)."""
    x = np.arange(width, dtype=np.uint16)[None, :, None]
    y = np.arange(height, dtype=np.uint16)[:, None, None]
    return ((x + 2 * y + 8 * i + np.array([0, 85, 170], np.uint16)) % 256).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _tiny_h264() -> bytes:
    """A 3-frame 320×240 H.264 MP4 made with libx264, in memory."""
    buffer = io.BytesIO()
    width, height = _PROBE_SIZE
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(_pattern(i, width, height), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())[:160]
