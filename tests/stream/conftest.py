"""Fixtures of the stream tests: a session folder of generated media."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from helpers.media import H, W, square_image, write_clip


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention folder of generated inputs (session-wide: made once, ~0.1 s)."""
    folder = tmp_path_factory.mktemp("media")
    write_clip(folder / "clip.mp4")
    write_clip(folder / "silent.mp4", audio=False)
    write_clip(folder / "odd.mp4", width=W + 1, height=H + 1, frames=10, audio=False)
    write_clip(folder / "audio_only.m4a", video=False)
    (folder / "notes.mp4").write_text("not a video\n")
    data = (folder / "clip.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])      # moov (at the end) is lost
    (folder / "empty").mkdir()
    (folder / "seq").mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / "seq" / f"img_{i:03d}.png"), cv2.cvtColor(square_image(i), cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def clip(media: Path) -> Path:
    return media / "clip.mp4"
