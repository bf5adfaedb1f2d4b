"""Live outputs: a virtual camera (pyvirtualcam), a preview window (OpenCV), a network stream (PyAV), and two
wrappers that keep a live job smooth: `BackgroundSink` (a slow writer on its own thread, newest frame wins)
and `RepeatLast` (re-sends the last frame while the camera is away). All follow stream/protocols.py's Sink
protocol: `write`, `close(interrupted=)`, `abort`, context manager; recordings use stream/sinks/files.py.

Network streams (`--stream-url`):

    scheme             composite              transparent (background: transparent)
    rtmp://, rtmps://  FLV, H.264 yuv420p     refused: FLV/H.264 has no alpha
    srt://, tcp://     MPEG-TS, H.264         WebM (live), VP9 yuva420p: OBS's Media Source keeps the alpha
    udp://             MPEG-TS, H.264         refused: WebM does not survive lost packets
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import NoReturn

import av
import cv2
import numpy as np

from model.errors import P3MError
from stream.ffmpeg import error_reason
from stream.frames import Frame
from stream.protocols import Sink
from stream.sinks.encoding import Clock, VideoFormat, add_video_stream, sink_pixels, video_frame
from stream.sinks.relay import NetworkRelay, RelayError

STREAM_SCHEMES = ("rtmp://", "rtmps://", "srt://", "tcp://", "udp://")
# Low latency: no B-frames or look-ahead; a keyframe every two seconds (`g`, set per stream) for late joiners.
STREAM_H264 = VideoFormat("libx264", "yuv420p", {"preset": "veryfast", "tune": "zerolatency", "bf": "0"})
STREAM_VP9_ALPHA = VideoFormat("libvpx-vp9", "yuva420p",
                               {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "row-mt": "1"})


def virtual_camera_hint() -> str:
    """How to create a virtual camera on this system, in one line."""
    if platform.system() == "Linux":
        return ("create one: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=p3m "
                "(package v4l2loopback-dkms), then run again")
    return "install OBS Studio and start its virtual camera once (Start Virtual Camera), then run again"


class VirtualCameraSink(Sink):
    """Sends each composite (RGB) to a virtual camera that Zoom, Meet or OBS can pick, through pyvirtualcam.

    `device` None (or "auto") takes the first free one; `backend` names a pyvirtualcam backend (tests
    register their own). No device → P3MError with the line that creates one.
    """

    def __init__(self, *, width: int, height: int, fps: float | Fraction, device: str | None = None,
                 backend: str | None = None) -> None:
        import pyvirtualcam

        device = None if device in (None, "", "auto") else device
        if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
            raise P3MError(f"unknown virtual camera backend {backend!r}",
                           f"available here: {', '.join(pyvirtualcam.camera.BACKENDS) or 'none'}")
        try:
            self._camera = pyvirtualcam.Camera(width, height, float(fps), fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=device, backend=backend)
        except RuntimeError as e:
            reason = " / ".join(line.strip() for line in str(e).splitlines() if line.strip())
            raise P3MError(f"no virtual camera available ({reason})", virtual_camera_hint()) from None
        self.width, self.height = width, height
        self.path = self._camera.device
        self.backend = self._camera.backend

    def write(self, frame: Frame) -> None:
        """Send one frame (the composite, or the camera image when no stage set an output)."""
        pixels = frame.pixels
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"frame {frame.index}: a virtual camera takes H×W×3 RGB, got {pixels.shape}")
        self._camera.send(np.ascontiguousarray(pixels))
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self._camera.close()          # idempotent in pyvirtualcam

    def abort(self) -> None:
        self._camera.close()


class PreviewSink(Sink):
    """An OpenCV window with the output. `write` (sink thread) only keeps the newest frame; `show()` draws it
    and reads keys on the caller's thread, as GUI toolkits want (macOS: the main thread). `q`/Esc or
    closing the window calls `on_quit`.
    """

    def __init__(self, title: str = "p3m live", on_quit: Callable[[], None] | None = None) -> None:
        if not has_gui():
            raise P3MError("--preview: this OpenCV build has no GUI (opencv-python-headless?)",
                           "install opencv-contrib-python (with GUI), or drop --preview")
        if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise P3MError("--preview needs a display, and DISPLAY is not set",
                           "run it in a desktop session (or ssh -X), or drop --preview")
        self.path, self.title, self.on_quit = "preview", title, on_quit
        self._lock = threading.Lock()
        self._latest: np.ndarray | None = None
        self._shown: np.ndarray | None = None
        self._opened = False
        self.quit = False

    def write(self, frame: Frame) -> None:
        with self._lock:
            self._latest = frame.pixels
        self.frames_written += 1

    def show(self) -> None:
        """Draw the newest frame and handle keys; call it often from the thread that owns the window."""
        with self._lock:
            pixels = self._latest
        if pixels is not None and pixels is not self._shown:
            self._shown = pixels
            cv2.imshow(self.title, _to_bgr(pixels))
            self._opened = True
        if not self._opened:
            return
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if (key in (ord("q"), ord("Q"), 27) or closed) and not self.quit:
            self.quit = True
            if self.on_quit is not None:
                self.on_quit()

    def destroy(self) -> None:
        """Close the window (on the thread that showed it)."""
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._opened = False


class StreamSink(Sink):
    """A network stream for OBS or a streaming service, encoded for low latency (see the module table).

    The muxed bytes go out through a `NetworkRelay` (stream/sinks/relay.py): connecting is bounded by
    `open_timeout_s`, a receiver that takes nothing for `write_timeout_s` is a P3MError, and nothing here ever
    blocks in network code, so Ctrl-C always gets through. `frames_written` counts frames handed on.
    """

    def __init__(self, url: str, *, width: int, height: int, fps: float | Fraction, transparent: bool = False,
                 bitrate_kbps: int = 2500, time_base: Fraction = Fraction(1, 1000),
                 open_timeout_s: float = 10.0, write_timeout_s: float = 5.0) -> None:
        scheme = url.split("://", 1)[0].lower() + "://" if "://" in url else ""
        if scheme not in STREAM_SCHEMES:
            raise P3MError(f"--stream-url {url!r}: unsupported protocol",
                           "use rtmp://host/app/key (FLV/H.264), srt://host:port, tcp://host:port or udp://host:port")
        if transparent and scheme in ("rtmp://", "rtmps://", "udp://"):
            raise P3MError(f"cannot stream a transparent overlay to {scheme}: "
                           f"{'FLV/H.264' if scheme != 'udp://' else 'WebM over lossy UDP'} carries no usable alpha",
                           "send WebM with VP9 alpha to srt:// or tcp://, or stream a composite (-b green) and "
                           "chroma-key it in OBS")
        self.path, self.width, self.height, self.transparent = url, width, height, transparent
        self.time_base = time_base
        fps = Fraction(fps).limit_denominator(1001)
        if transparent:
            container_format, self.format, muxer = "webm", STREAM_VP9_ALPHA, {"live": "1"}
        else:
            container_format = "flv" if scheme.startswith("rtmp") else "mpegts"
            self.format = STREAM_H264
            muxer = {"flvflags": "no_duration_filesize"} if container_format == "flv" else {}
        self._clock = Clock(time_base, fps, self.path)
        self._closed = False
        try:
            self._relay = NetworkRelay(url, open_timeout_s=open_timeout_s, write_timeout_s=write_timeout_s)
        except RelayError as e:
            self._fail_open(self.path, e)
        try:
            # Every packet goes out as it is muxed (`flush_packets`): no 32 KB of buffered latency.
            self._container = av.open(self._relay, "w", format=container_format,
                                      container_options={**muxer, "flush_packets": "1"})
            self._stream, self.encoder = add_video_stream(
                self._container, self.format, width=width, height=height, fps=fps, time_base=time_base,
                options={"g": str(round(2 * fps))}, bit_rate=bitrate_kbps * 1000, low_latency=True)
            self._container.start_encoding()
        except (av.FFmpegError, OSError) as e:
            self._relay.kill()
            self._fail_open(self.path, e)
        except BaseException:       # anything else (Ctrl-C, a missing encoder): no relay process left behind
            self._relay.kill()
            raise

    @staticmethod
    def _fail_open(url: str, error: BaseException) -> NoReturn:
        reason = error_reason(error)
        if isinstance(error, av.ProtocolNotFoundError) or "Protocol not found" in reason:
            raise P3MError(f"this PyAV build cannot stream to {url.split('://')[0]}:// ({reason})",
                           "use rtmp://, tcp:// or udp://, or a PyAV built with that protocol "
                           "(SRT needs FFmpeg with libsrt)") from None
        raise P3MError(f"cannot connect to {url}: {reason}",
                       "is the server running and the URL (and key) right?") from None

    def write(self, frame: Frame) -> None:
        """Encode and send one frame, at its own pts (the live clock) while they rise, as a file sink would."""
        pixels, layout = sink_pixels(frame, "transparent" if self.transparent else "composite", self.width,
                                     self.height)
        video = video_frame(pixels, layout, self.format)
        video.pts = self._clock.next(frame)
        video.time_base = self.time_base
        try:
            self._container.mux(self._stream.encode(video))
        except (av.FFmpegError, OSError) as e:
            raise self._broken(e) from None
        self.frames_written += 1

    def _broken(self, error: BaseException) -> P3MError:
        return P3MError(f"stream to {self.path} failed after {self.frames_written} frames: {error_reason(error)}",
                        "did the server stop, stop reading, or the network drop?")

    def close(self, *, interrupted: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written:
                self._container.mux(self._stream.encode(None))
            self._container.close()
            self._relay.finish()
        except (av.FFmpegError, OSError) as e:
            raise self._broken(e) from None
        finally:
            self._relay.kill()

    def cancel(self) -> None:
        """End a write waiting on the network now (thread-safe); `abort` follows."""
        self._relay.cancel()

    def abort(self) -> None:
        """Stop at once: the relay is killed first, so closing the container cannot wait on the network."""
        if not self._closed:
            self._closed = True
            self._relay.cancel()
            self._relay.kill()
            with contextlib.suppress(Exception):     # a broken connection: nothing left to save
                self._container.close()


def has_gui() -> bool:
    """True when this OpenCV build can open windows (not opencv-python-headless)."""
    match = re.search(r"GUI:\s+(\S+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NONE"


def _to_bgr(pixels: np.ndarray) -> np.ndarray:
    """BGR for imshow; an RGBA output is shown over a grey checkerboard."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        h, w = pixels.shape[:2]
        checks = ((np.indices((h, w)) // 16).sum(0) % 2 * 60 + 100).astype(np.uint8)[..., None].repeat(3, 2)
        alpha = pixels[..., 3:4].astype(np.float32) / 255
        pixels = (pixels[..., :3] * alpha + checks * (1 - alpha)).astype(np.uint8)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
