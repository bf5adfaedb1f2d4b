"""A matte that finds no person in most frames (or only a speck) is warned about; a portrait is not."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers.media import write_clip

from stream.jobs.demo import make_demo_clip
from stream.jobs.offline import cutout
from stream.stages.presence import PersonPresence


def test_presence_counts_frames_with_no_or_a_tiny_person():
    presence = PersonPresence()
    person = np.zeros((100, 100), np.float32)
    person[20:80, 30:70] = 1.0
    speck = np.zeros((100, 100), np.float32)
    speck[:4, :4] = 1.0                                        # 0.16 % of the picture
    for alpha in (person, speck, np.zeros((100, 100), np.float32)):
        presence.add(alpha)
    assert (presence.frames, presence.empty) == (3, 2)
    assert "in 2 of 3 frames" in presence.warning()
    presence.add(person)
    assert presence.warning() is None                          # half the frames: not most


@pytest.mark.parametrize("person", [False, True])
def test_the_cutout_warns_when_most_frames_have_no_person(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          person: bool) -> None:
    if person:
        clip = make_demo_clip(tmp_path / "demo.mp4", seconds=0.5, size=(426, 240))
    else:
        clip = tmp_path / "empty.mp4"                          # coloured squares on a plain backdrop
        write_clip(clip, frames=15, audio=False)
    with caplog.at_level(logging.WARNING, logger="stream.jobs.offline"):
        cutout(clip, tmp_path / "out.mp4", model="mediapipe", infer_size=256, quiet=True)
    warned = [r.getMessage() for r in caplog.records if "found no person" in r.getMessage()]
    assert (warned == []) is person, warned
