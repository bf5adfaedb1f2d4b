"""Sources: frames come out numbered, timed and RGB; bad inputs are one-line P3MErrors."""
from __future__ import annotations

import socket
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers.media import FPS, RED, H, N, W, square_image

from model.errors import P3MError
from stream.sources.camera import open_camera
from stream.sources.files import ImageSequenceSource, VideoSource, open_source


def test_video_file_yields_numbered_rgb_frames(clip: Path) -> None:
    with open_source(str(clip)) as source:
        assert isinstance(source, VideoSource)
        assert (source.width, source.height, source.fps, source.frame_count) == (W, H, Fraction(FPS), N)
        assert source.has_audio and source.path == str(clip)
        frames = list(source)
    assert [f.index for f in frames] == list(range(N))
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.time_base == source.time_base for f in frames)
    assert np.allclose([f.time for f in frames], np.arange(N) / FPS)
    assert all(a.captured_at <= b.captured_at for a, b in zip(frames, frames[1:]))
    # RGB, not BGR: the centre of the moving square is red.
    centre = frames[7].image[24, 7 + 10]
    assert np.abs(centre.astype(int) - RED).max() < 40


def test_image_folder_and_pattern_are_sorted_sequences(media: Path) -> None:
    with open_source(str(media / "seq")) as folder:
        assert isinstance(folder, ImageSequenceSource)
        assert (folder.width, folder.height, folder.frame_count, folder.fps) == (W, H, 5, Fraction(25))
        images = [f.image for f in folder]
    assert all(np.array_equal(img, square_image(i)) for i, img in enumerate(images))
    with open_source(str(media / "seq" / "img_%03d.png"), fps=30) as pattern:
        frames = list(pattern)
        assert pattern.fps == 30 and not pattern.has_audio
    assert [f.pts for f in frames] == list(range(5)) and frames[1].time_base == Fraction(1, 30)


@pytest.mark.parametrize("name, words", [
    ("missing.mp4", "not found"),
    ("notes.mp4", "cannot open"),
    ("truncated.mp4", "cannot open"),
    ("audio_only.m4a", "no video stream"),
    ("empty", "no images"),
    ("seq/none_%04d.png", "no files match"),
])
def test_bad_inputs_are_one_line_p3m_errors(media: Path, name: str, words: str) -> None:
    with pytest.raises(P3MError) as info:
        open_source(str(media / name))
    assert words in info.value.message and "\n" not in str(info.value)
    assert info.value.hint


def test_an_rtmp_url_is_connected_to_not_listened_on() -> None:
    # FFmpeg's `timeout` option turns rtmp into a server that waits for a publisher: no input may get it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]           # free, and nothing listens on it once the probe closes
    for opener in (open_source, open_camera):
        with pytest.raises(P3MError, match="cannot open .*refused") as info:
            opener(f"rtmp://127.0.0.1:{port}/live/cam")
        assert info.value.hint
