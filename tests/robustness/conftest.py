"""Fixtures for the robustness suite: a session folder of bad and odd inputs, the test doubles registered."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import robust_doubles
from helpers import robust_media as rm


@pytest.fixture(scope="session", autouse=True)
def doubles() -> None:
    robust_doubles.register()


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input of the matrix, made once (~0.3 s). Tests must not modify them."""
    d = tmp_path_factory.mktemp("inputs")
    rm.write_clip(d / "ok.mp4")
    rm.write_clip(d / "long.mp4", frames=60)
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("hello, I am a text file\n")
    (d / "folder").mkdir()
    rm.truncate(d / "ok.mp4", d / "truncated.mp4")                      # index (moov) at the end: lost
    rm.write_clip(d / "faststart.mp4", frames=30, faststart=True)
    rm.truncate(d / "faststart.mp4", d / "truncated_faststart.mp4")     # index first: half the frames remain
    rm.write_clip(d / "full.mkv", frames=30)
    rm.truncate(d / "full.mkv", d / "truncated.mkv")
    rm.write_clip(d / "thirty.mp4", frames=30)
    rm.corrupt_packet(d / "thirty.mp4", d / "corrupt_packet.mp4", index=8)
    rm.write_audio_only(d / "audio_only.m4a")
    rm.write_frameless(d / "no_frames.avi")
    rm.write_frameless(d / "no_frames.mkv", codec="ffv1", pix_fmt="yuv420p")
    rm.write_clip(d / "1x1.mkv", frames=5, width=1, height=1)
    rm.write_clip(d / "3x5.mkv", frames=5, width=3, height=5)
    rm.write_clip(d / "4097x17.mkv", frames=5, width=4097, height=17)
    rm.write_clip(d / "rotated.mp4", frames=5, rotation=-90)            # a phone's "rotate=90" (clockwise)
    rm.write_clip(d / "vfr.mp4", frames=10, pts_ms=[0, 40, 80, 200, 220, 260, 400, 410, 420, 500])
    rm.write_clip(d / "10bit.mkv", frames=10, pix_fmt="yuv420p10le")
    return d


@pytest.fixture
def no_pipeline_threads():
    """Fails a test that leaves a pipeline thread running (one it started: an earlier test's foreground warm-up
    may still be importing)."""
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("p3m-") and t not in before]
    assert not left, f"pipeline threads still running: {left}"
