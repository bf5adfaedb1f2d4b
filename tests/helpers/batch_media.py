"""A folder of clips for the batch tests: good ones at two depths, a damaged one, and ways to read outputs."""
from __future__ import annotations

import os
from pathlib import Path

from helpers.media import N, audio_packets, decoded_video, write_clip

GOOD = ["a.mp4", "b.mp4", "day2/c.mp4", "day2/d.mp4", "done.mp4"]     # done.mp4: its output exists already
DAMAGED = "broken.mp4"


def make_clips(folder: Path) -> Path:
    """Six short clips with sound (N frames each) under `folder`; `broken.mp4` has lost its index."""
    for name in GOOD:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_clip(folder / name)
    data = (folder / GOOD[0]).read_bytes()
    (folder / DAMAGED).write_bytes(data[: len(data) // 2])       # the moov atom (at the end) is lost
    return folder


def check_output(path: Path, frames: int = N) -> None:
    """A finished cut-out: every frame of its input, and its sound."""
    assert len(decoded_video(path)) == frames, path
    assert audio_packets(path)[0] > 0, path


def all_files(folder: Path) -> set[str]:
    """Every file under `folder`, hidden ones too, relative to it."""
    return {os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files}
