"""Live sources: the synthetic camera, files played at their own rate (decoded as `p3m cutout` decodes them:
upright, damaged packets skipped), device opening and its OpenCV fallback, and a camera that disappears
mid-stream (retried with back-off, reported)."""
from __future__ import annotations

import functools
import http.server
import itertools
import logging
import platform
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import robust_media as rm
from helpers.media import FPS, H, W, write_clip

import stream.sources.camera as camera
from model.errors import P3MError
from stream.sources.camera import (
    LIVE_TIME_BASE,
    CameraSource,
    _OpenCVCapture,
    has_input_format,
    open_camera,
    parse_size,
)
from stream.sources.synthetic import SyntheticCamera, read_stamp


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720) and parse_size(" 640 X 480 ") == (640, 480)
    for bad in ("720p", "0x10", "12x", "99999x1"):
        with pytest.raises(P3MError, match="WIDTHxHEIGHT"):
            parse_size(bad)


def test_synthetic_camera_yields_stamped_frames_on_the_live_clock() -> None:
    frames = list(SyntheticCamera((64, 48), fps=100, frames=12))
    assert [f.index for f in frames] == list(range(12))
    assert [read_stamp(f.image) for f in frames] == list(range(12))
    assert all(f.image.shape == (48, 64, 3) and f.time_base == LIVE_TIME_BASE for f in frames)
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and frames[-1].captured_at > frames[0].captured_at
    # At 100 fps, 12 frames span at least 11 intervals (paced against perf_counter, never early).
    assert frames[-1].captured_at - frames[0].captured_at >= 0.9 * 11 / 100


def test_a_file_plays_at_its_own_rate_scaled_to_the_camera_size(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=8, audio=False)
    with open_camera(str(clip), size="32x24") as source:
        assert (source.width, source.height) == (32, 24) and source.fps == FPS
        frames = list(source)
    assert len(frames) == 8 and all(f.image.shape == (24, 32, 3) for f in frames)
    assert frames[-1].captured_at - frames[0].captured_at >= 0.9 * 7 / FPS
    assert [f.index for f in frames] == list(range(8)) and frames[-1].pts > frames[0].pts


def test_a_rotated_phone_clip_played_as_a_camera_comes_out_upright(tmp_path: Path) -> None:
    clip = rm.write_clip(tmp_path / "rotated.mp4", frames=4, rotation=-90)   # a phone's "rotate=90" (clockwise)
    with open_camera(str(clip)) as source:
        assert (source.width, source.height) == (rm.H, rm.W)                 # 64×48 stored, turned a quarter
        frames = list(source)
    assert len(frames) == 4 and all(f.image.shape == (rm.W, rm.H, 3) for f in frames)
    for i, frame in enumerate(frames):
        assert np.abs(frame.image.astype(int) - np.rot90(rm.image(i), -1)).mean() < 6   # clockwise, as FFmpeg
    with open_camera(str(clip), size="24x32") as scaled:                     # the camera size is the upright one
        image = next(iter(scaled)).image
    assert image.shape == (32, 24, 3) and image[:3, -3:].min() > 200 and image[:3, :3].max() < 150


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:     # no request lines in the test output
        pass


def test_a_rotated_clip_served_over_http_and_played_as_a_camera_comes_out_upright(tmp_path: Path) -> None:
    rm.write_clip(tmp_path / "rotated.mp4", frames=4, rotation=-90)
    handler = functools.partial(_QuietFiles, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with open_camera(f"http://127.0.0.1:{server.server_address[1]}/rotated.mp4") as source:
                assert (source.width, source.height) == (rm.H, rm.W)
                image = next(iter(source)).image                     # a URL is reopened at its end: take one
        finally:
            server.shutdown()
    assert image.shape == (rm.W, rm.H, 3) and np.abs(image.astype(int) - np.rot90(rm.image(0), -1)).mean() < 6


def test_a_damaged_packet_in_a_clip_played_as_a_camera_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    clip = rm.corrupt_packet(rm.write_clip(tmp_path / "ok.mp4", frames=12), tmp_path / "damaged.mp4", index=8)
    with caplog.at_level(logging.WARNING), open_camera(str(clip)) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(11))                     # 12 frames, the damaged one missing
    assert "skipped a damaged packet after 8 frames" in caplog.text


def test_a_cut_clip_played_as_a_camera_keeps_its_frames_and_says_so(tmp_path: Path, caplog) -> None:
    clip = rm.truncate(rm.write_clip(tmp_path / "full.mkv", frames=30), tmp_path / "cut.mkv")
    with caplog.at_level(logging.WARNING), open_camera(str(clip)) as source:
        frames = list(source)
    assert 0 < len(frames) < 30 and f"the input ended after {len(frames)} of the 30 frames" in caplog.text


class FlakyDevice:
    """An opener for CameraSource: capture 1 gives 3 frames then fails (unplugged); the next `outage` opens
    fail; then a capture that never ends. Records when it was called."""

    def __init__(self, outage: int, forever: bool = False) -> None:
        self.outage, self.forever, self.calls = outage, forever, []

    def __call__(self):
        import time

        self.calls.append(time.perf_counter())
        n = len(self.calls)
        if n == 1:
            return _Capture(3, fail=True)
        if self.forever or n <= 1 + self.outage:
            raise P3MError("cannot open camera /dev/video9: No such device", "plug it in")
        return _Capture(None)


class _Capture:
    width, height, fps = W, H, Fraction(30)

    def __init__(self, frames: int | None, fail: bool = False) -> None:
        self.frames, self.fail = frames, fail

    def __iter__(self):
        i = 0
        while self.frames is None or i < self.frames:
            yield np.full((H, W, 3), i, np.uint8), None
            i += 1
        if self.fail:
            raise OSError(19, "No such device")

    def close(self) -> None:
        pass


def test_a_lost_camera_is_retried_with_back_off_and_reported(monkeypatch, caplog) -> None:
    monkeypatch.setattr(camera, "BACKOFF_S", (0.01, 0.04))
    device = FlakyDevice(outage=3)
    source = CameraSource("/dev/video9", device)
    with caplog.at_level(logging.WARNING, logger="stream.sources.camera"):
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 6:
                break
    assert [f.index for f in frames] == list(range(6))          # numbering goes on across the outage
    assert source.reconnects == 1 and source.lost_seconds > 0
    gaps = np.diff(device.calls[1:])                              # between the retries: 0.01 → 0.02 → 0.04
    assert len(device.calls) == 5 and gaps[-1] > gaps[0]
    text = caplog.text
    assert "camera /dev/video9 lost (No such device): reconnecting" in text and "is back after" in text


def test_a_camera_gone_for_longer_than_the_timeout_is_a_p3m_error(monkeypatch) -> None:
    monkeypatch.setattr(camera, "BACKOFF_S", (0.01, 0.02))
    source = CameraSource("/dev/video9", FlakyDevice(outage=0, forever=True), timeout_s=0.1)
    with pytest.raises(P3MError, match="lost for .* gave up"):
        list(source)


def test_a_stop_request_ends_the_reconnect_wait(monkeypatch) -> None:
    monkeypatch.setattr(camera, "BACKOFF_S", (0.01, 0.02))
    source = CameraSource("/dev/video9", FlakyDevice(outage=0, forever=True), timeout_s=0)
    calls = []
    source.should_stop = lambda: calls.append(1) or len(calls) > 5
    assert len(list(source)) == 3                                 # the frames before the loss, then a clean end


@pytest.mark.skipif(platform.system() != "Linux", reason="v4l2 is Linux's device input")
def test_this_pyav_reads_v4l2_devices_and_a_missing_one_is_a_p3m_error() -> None:
    assert has_input_format("v4l2")                               # the wheel lists it as "video4linux2,v4l2"
    with pytest.raises(P3MError, match="cannot open camera /dev/video99") as e:
        open_camera("v4l2:/dev/video99")
    assert "v4l2-ctl" in e.value.hint
    with pytest.raises(P3MError, match="camera not found: /dev/video99"):
        open_camera("/dev/video99")


def test_without_the_device_input_it_falls_back_to_opencv_and_says_so(monkeypatch, caplog) -> None:
    monkeypatch.setattr(camera, "has_input_format", lambda name: False)
    opened = []

    class FakeOpenCV(_Capture):
        def __init__(self, target, **kwargs) -> None:
            opened.append((target, kwargs))
            super().__init__(2)

    monkeypatch.setattr(camera, "_OpenCVCapture", FakeOpenCV)
    with caplog.at_level(logging.WARNING, logger="stream.sources.camera"):
        source = open_camera("v4l2:/dev/video0", size="320x240", pixel_format="mjpeg")
    assert "no 'v4l2' device input: using OpenCV's capture" in caplog.text
    assert opened == [("/dev/video0", {"size": (320, 240), "fps": None, "pixel_format": "mjpeg"})]
    source.close()


def test_opencv_capture_reads_frames(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    capture = _OpenCVCapture(str(clip))                          # a file exercises the same read path
    try:
        frames = [image for image, _ in itertools.islice(capture, 3)]
    finally:
        capture.close()
    assert len(frames) == 3 and frames[0].shape == (H, W, 3)


def test_bad_camera_specs_are_p3m_errors() -> None:
    with pytest.raises(P3MError, match="camera not found: nope"):
        open_camera("nope")
    with pytest.raises(P3MError, match="camera format"):
        open_camera("synthetic", pixel_format="h264")
    with pytest.raises(P3MError, match="WIDTHxHEIGHT"):
        open_camera("synthetic", size="big")


def test_device_options_ask_for_size_rate_and_format() -> None:
    assert camera._device_options("v4l2", (1280, 720), 30.0, "mjpeg") == {
        "video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}
    assert camera._device_options("v4l2", None, None, "yuyv") == {"input_format": "yuyv422"}
    assert camera._device_options("dshow", None, 15.0, "mjpeg") == {"framerate": "15", "vcodec": "mjpeg"}
    assert camera._device_options("avfoundation", None, None, "yuyv") == {"pixel_format": "yuyv422"}
