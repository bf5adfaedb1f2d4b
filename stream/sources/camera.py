"""Cameras: a webcam (PyAV device input, OpenCV's capture as the fallback), or a video file or URL played
in real time, as live sources (stream/sources/live.py). PyAV inputs are read by `stream.decoding.VideoReader`
(stream/sources/files.py): upright, damaged packets skipped, a cut file kept up to the cut.

A device or URL that fails mid-stream is reopened with back-off (0.25 s doubling to 4 s) and reported;
after `timeout_s` without a frame it is a P3MError. A file ends the stream at its end.
"""
from __future__ import annotations

import logging
import os
import platform
import re
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Protocol

import av
import cv2
import numpy as np

from model.errors import P3MError
from stream.decoding import VideoReader
from stream.ffmpeg import Abandoned, abandonable, error_reason, is_url, sane_fps
from stream.frames import Frame
from stream.sources.live import LIVE_TIME_BASE, LiveSource
from stream.sources.synthetic import SyntheticCamera

log = logging.getLogger(__name__)
PIXEL_FORMATS = ("mjpeg", "yuyv")
BACKENDS = ("auto", "pyav", "opencv")
BACKOFF_S = (0.25, 4.0)           # first retry delay, longest retry delay
DRIVERS = {"Linux": "v4l2", "Darwin": "avfoundation", "Windows": "dshow"}
CAMERA_FORMS = ("a device (/dev/video0, 0, avfoundation:0, dshow:video=NAME, opencv:0), "
                "a video file or URL (played at its own rate), or 'synthetic'")


class CaptureLost(Exception):
    """The device stopped giving frames (unplugged, taken by another app, stream ended)."""


class Capture(Protocol):
    """One open connection to a camera: iterate it for (RGB image, media time in s or None); `close()` it."""

    width: int
    height: int
    fps: Fraction | None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float | None]]: ...

    def close(self) -> None: ...


def parse_size(text: str) -> tuple[int, int]:
    """`1280x720` → (1280, 720); a P3MError naming the value otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not match or not all(0 < int(v) <= 8192 for v in match.groups()):
        raise P3MError(f"camera size {text!r} is not WIDTHxHEIGHT", "e.g. --camera-size 1280x720")
    return int(match.group(1)), int(match.group(2))


class CameraSource(LiveSource):
    """A camera as a live source: a device, or a file/URL played at its own frame rate (`paced`).

    `opener()` returns a fresh `Capture`; it is called once here (errors are P3MErrors before any frame
    is read) and again after the capture is lost, when `retry` is true.
    """

    def __init__(self, path: str, opener: Callable[[], Capture], *, size: tuple[int, int] | None = None,
                 fps: float | None = None, paced: bool = False, retry: bool = True,
                 timeout_s: float = 60.0) -> None:
        self.path, self._opener, self.paced, self.retry, self.timeout_s = path, opener, paced, retry, timeout_s
        self._capture: Capture | None = opener()
        self.width, self.height = size or (self._capture.width, self._capture.height)
        self.fps = sane_fps(Fraction(fps).limit_denominator(1001) if fps else None, self._capture.fps)
        self.lost_seconds = 0.0

    def __iter__(self) -> Iterator[Frame]:
        index, start = 0, time.perf_counter()
        try:
            while self._capture is not None:
                anchor: tuple[float, float] | None = None    # (perf_counter, media time) where pacing starts
                try:
                    for image, media_time in self._capture:
                        if self.paced and media_time is not None:
                            now = time.perf_counter()
                            if anchor is None or now - (anchor[0] + media_time - anchor[1]) > 1.0:
                                anchor = (now, media_time)    # first frame, or over 1 s behind: no catch-up burst
                            if not self._sleep_until(anchor[0] + media_time - anchor[1]):
                                return
                        if image.shape[:2] != (self.height, self.width):   # a reconnect may change the size
                            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
                        now = time.perf_counter()
                        yield Frame(index=index, image=image, pts=round((now - start) * 1000),
                                    time_base=LIVE_TIME_BASE, captured_at=now)
                        index += 1
                    reason = "the stream ended"
                except (av.FFmpegError, OSError, CaptureLost) as e:
                    reason = error_reason(e)
                if not self.retry:
                    if reason != "the stream ended":
                        raise P3MError(f"cannot read {self.path} after {index} frames: {reason}",
                                       "the file may be truncated or damaged")
                    return
                self._capture.close()
                self._capture = self._reconnect(reason)
        finally:
            self.close()

    def _reconnect(self, reason: str) -> Capture | None:
        """Reopen the device with back-off; None when asked to stop; P3MError after `timeout_s`."""
        lost, delay, tries = time.perf_counter(), BACKOFF_S[0], 0
        log.warning("camera %s lost (%s): reconnecting", self.path, reason)
        while True:
            if not self._sleep_until(time.perf_counter() + delay):
                return None
            tries += 1
            try:
                capture = abandonable(self._opener, self.should_stop)   # Ctrl-C need not wait out a dead server
            except Abandoned:
                return None
            except P3MError as e:
                waited = time.perf_counter() - lost
                if self.timeout_s and waited >= self.timeout_s:
                    raise P3MError(f"camera {self.path} lost for {waited:.0f} s ({reason}); gave up after "
                                   f"{tries} tries", "check the cable or the app holding the camera") from None
                delay = min(2 * delay, BACKOFF_S[1])
                log.warning("camera %s still gone (%s): next try in %.2g s", self.path, e.message, delay)
                continue
            gone = time.perf_counter() - lost
            self.reconnects += 1
            self.lost_seconds += gone
            log.warning("camera %s is back after %.1f s (%d tries)", self.path, gone, tries)
            return capture

    def close(self) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None


class _PyAVCapture:
    """A device (`format`), file or URL read by `stream.decoding.VideoReader`; `size` scales a file's frames."""

    def __init__(self, target: str, *, format: str | None = None, options: dict[str, str] | None = None,
                 size: tuple[int, int] | None = None, reconnects: bool = True) -> None:
        # Frame threads hold back (threads - 1) frames: fine for a file, hidden latency for a device.
        self._reader = VideoReader(target, name=f"camera {target}", hint=_open_hint(format), format=format,
                                   options=options, thread_type="SLICE" if format else "AUTO", size=size,
                                   reconnects=reconnects)
        self.width, self.height, self.fps = self._reader.width, self._reader.height, self._reader.fps

    def __iter__(self) -> Iterator[tuple[np.ndarray, float | None]]:
        for image, decoded in self._reader:
            yield image, decoded.time

    def close(self) -> None:
        self._reader.close()


class _OpenCVCapture:
    """A device through OpenCV's VideoCapture (V4L2, AVFoundation, DirectShow/MSMF): the fallback."""

    APIS = {"Linux": cv2.CAP_V4L2, "Darwin": cv2.CAP_AVFOUNDATION, "Windows": cv2.CAP_DSHOW}

    def __init__(self, target: str | int, *, size: tuple[int, int] | None = None, fps: float | None = None,
                 pixel_format: str | None = None) -> None:
        api = self.APIS.get(platform.system(), cv2.CAP_ANY) if isinstance(target, int) or target.startswith("/dev/") \
            else cv2.CAP_ANY
        self._cap = cv2.VideoCapture(target, api)
        if not self._cap.isOpened():
            self._cap.release()
            raise P3MError(f"cannot open camera {target} with OpenCV", "is it plugged in and not used by another app?")
        if pixel_format:
            self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*("MJPG" if pixel_format == "mjpeg" else "YUYV")))
        if size:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or (size or (640, 480))[0]
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or (size or (640, 480))[1]
        rate = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(rate).limit_denominator(1001) if rate and rate > 0 else None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float | None]]:
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                raise CaptureLost("OpenCV got no frame from the camera")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None

    def close(self) -> None:
        self._cap.release()


def has_input_format(name: str) -> bool:
    """True when this PyAV build can read the device format `name` (v4l2, avfoundation, dshow)."""
    return any(name in entry.split(",") for entry in av.formats_available)


def open_camera(spec: str | None = None, *, size: tuple[int, int] | str | None = None, fps: float | None = None,
                pixel_format: str | None = None, backend: str = "auto", timeout_s: float = 60.0) -> LiveSource:
    """Open `--camera`: a device (None: the first camera), a video file or URL played at its own frame rate,
    or `synthetic`. `size`/`fps`/`pixel_format` (mjpeg|yuyv) are asked of a device and scale a file's frames.
    """
    if isinstance(size, str):
        size = parse_size(size)
    if pixel_format is not None and pixel_format not in PIXEL_FORMATS:
        raise P3MError(f"camera format {pixel_format!r} is unknown", f"use one of: {', '.join(PIXEL_FORMATS)}")
    if backend not in BACKENDS:
        raise P3MError(f"camera backend {backend!r} is unknown", f"use one of: {', '.join(BACKENDS)}")
    if spec in ("synthetic", "test"):
        return SyntheticCamera(size or (640, 480), fps or 30.0)
    if spec is not None and (is_url(spec) or os.path.isfile(spec)):
        return _open_stream(spec, size, fps, timeout_s)
    driver, target = _device(spec, backend)
    if driver != "opencv" and not has_input_format(driver):
        log.warning("this PyAV build has no '%s' device input: using OpenCV's capture for %s", driver, target)
        driver = "opencv"
    if driver == "opencv":
        cv_target: str | int = int(target) if str(target).isdigit() else target

        def opener() -> Capture:
            return _OpenCVCapture(cv_target, size=size, fps=fps, pixel_format=pixel_format)
    else:
        options = _device_options(driver, size, fps, pixel_format)

        def opener() -> Capture:
            return _PyAVCapture(target, format=driver, options=options)
    return CameraSource(str(spec if spec is not None else target), opener, size=size, fps=fps, timeout_s=timeout_s)


def _open_stream(spec: str, size: tuple[int, int] | None, fps: float | None, timeout_s: float) -> CameraSource:
    """A file (paced, ends at its end) or a URL (paced, reconnected when it drops)."""

    def opener() -> Capture:
        return _PyAVCapture(spec, size=size, reconnects=is_url(spec))

    if fps:
        log.warning("--camera-fps is ignored for %s: it plays at its own frame rate", spec)
    return CameraSource(spec, opener, size=size, paced=True, retry=is_url(spec), timeout_s=timeout_s)


def _device(spec: str | None, backend: str) -> tuple[str, str]:
    """(driver, target) for a device spec: the driver is a PyAV input format, or `opencv`."""
    system = platform.system()
    if spec is not None and ":" in spec and spec.split(":", 1)[0] in ("v4l2", "avfoundation", "dshow", "opencv"):
        driver, target = spec.split(":", 1)
        return driver, target
    native = DRIVERS.get(system)
    if spec is None:
        spec = "/dev/video0" if system == "Linux" else "0"
    if spec.startswith("video=") and system == "Windows":
        return ("opencv" if backend == "opencv" else "dshow"), spec
    if system == "Linux" and spec.isdigit():
        spec = f"/dev/video{spec}"
    looks_like_device = spec.startswith("/dev/") or spec.isdigit()
    if not looks_like_device:
        raise P3MError(f"camera not found: {spec}", f"--camera takes {CAMERA_FORMS}")
    if system == "Linux" and not os.path.exists(spec):
        raise P3MError(f"camera not found: {spec}", "is it plugged in? `v4l2-ctl --list-devices` lists cameras")
    if backend == "opencv" or native is None or (system == "Windows" and spec.isdigit()):
        return "opencv", spec            # DirectShow through FFmpeg needs the camera's name, OpenCV takes an index
    return native, spec


def _device_options(driver: str, size: tuple[int, int] | None, fps: float | None,
                    pixel_format: str | None) -> dict[str, str]:
    """FFmpeg device options for a size, a rate and mjpeg/yuyv."""
    options: dict[str, str] = {}
    if size:
        options["video_size"] = f"{size[0]}x{size[1]}"
    if fps:
        options["framerate"] = f"{fps:g}"
    if pixel_format == "yuyv":
        options["input_format" if driver == "v4l2" else "pixel_format"] = "yuyv422"
    elif pixel_format == "mjpeg":
        if driver == "v4l2":
            options["input_format"] = "mjpeg"
        elif driver == "dshow":
            options["vcodec"] = "mjpeg"
        else:
            log.warning("%s has no mjpeg capture format: using the camera's default", driver)
    return options


def _open_hint(format: str | None) -> str:
    if format == "v4l2":
        return "is it plugged in and not used by another app? `v4l2-ctl --list-formats-ext` lists its sizes and rates"
    if format == "avfoundation":
        return "allow camera access for this terminal (System Settings → Privacy → Camera); 0 is the first camera"
    if format == "dshow":
        return "give the camera's name as video=NAME (`ffmpeg -list_devices true -f dshow -i dummy` lists them)"
    return f"--camera takes {CAMERA_FORMS}"
