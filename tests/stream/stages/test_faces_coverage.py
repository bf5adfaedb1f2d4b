"""Coverage on clips that move: every frame whose input shows a face (to either bundled detector, at ≥ 0.5 on the
true face) shows none in the output; the leaked-frames figure is 0. A detection on the hidden box counts as
a leak unless the box kept under a tenth of its detail (then the detector saw a head-shaped blob, not a face).
Offline (`p3m cutout`) on the demo clip and on a generated clip where the astronaut's face moves, turns,
shrinks to ~24 px and grows to half the frame; live on that clip with the recording as the output."""
from __future__ import annotations

from pathlib import Path

import pytest

from stream.jobs.demo import make_demo_clip
from stream.jobs.live import live
from stream.jobs.offline import cutout
from tests.helpers.face_media import FaceCheck, PlayedFrames, decoded, moving_face, write_clip

FPS = 30


def _shown_faces(leaked: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    return [leak for leak in leaked if leak[2] >= 0.1]


@pytest.fixture(scope="module")
def check():
    judge = FaceCheck()
    yield judge
    judge.close()


@pytest.fixture(scope="module")
def moving() -> tuple[list, list]:
    return moving_face(frames=36)


def test_the_demo_clip_leaks_no_face(tmp_path: Path, check: FaceCheck) -> None:
    clip = make_demo_clip(tmp_path / "demo.mp4", seconds=0.6)
    result = cutout(clip, tmp_path / "out.mp4", model="mediapipe", blur_faces=True, quiet=True)
    inputs = [image for _, image in decoded(clip)]
    outputs = [image for _, image in decoded(tmp_path / "out.mp4")]
    # The true face: each input frame's best detection (the astronaut's face scores 0.84-0.97; the flag's
    # stars and the helmet, 0.5-0.6).
    truths = [max((b for d in check.detectors for b in d(image)), key=lambda b: b.score) for image in inputs]
    shown, leaked = check.leaks(inputs, outputs, truths)
    assert shown == len(inputs) == len(outputs) and _shown_faces(leaked) == []
    assert result.faces_hidden == len(inputs) and "faces hidden in 18" in result.summary()


def test_a_moving_turning_shrinking_face_leaks_in_no_frame_offline(tmp_path: Path, check: FaceCheck, moving) -> None:
    images, truths = moving
    clip = write_clip(tmp_path / "moving.mp4", images, FPS)
    cutout(clip, tmp_path / "out.mp4", model="mediapipe", blur_faces="all", quiet=True)
    inputs = [image for _, image in decoded(clip)]
    outputs = [image for _, image in decoded(tmp_path / "out.mp4")]
    shown, leaked = check.leaks(inputs, outputs, truths)
    assert len(outputs) == len(images) and shown >= 0.9 * len(images) and _shown_faces(leaked) == []


def test_a_moving_face_leaks_in_no_frame_live_recording(tmp_path: Path, check: FaceCheck, moving) -> None:
    images, truths = moving
    recording = tmp_path / "rec.mp4"
    result = live(PlayedFrames(images, FPS), model="mediapipe", blur_faces="all", background="green",
                  output=str(recording), quiet=True)
    # Frames dropped live never leave; each recorded frame is the input frame of its time stamp (RepeatLast's
    # copies of the last frame, after the input ends, are left out).
    sent = [(t, image) for t, image in decoded(recording) if round(t * FPS) < len(images)]
    index = [round(t * FPS) for t, _ in sent]
    assert len(sent) >= len(images) // 2 and result.stats.faces_hidden == result.stats.sent
    shown, leaked = check.leaks([images[i] for i in index], [image for _, image in sent], [truths[i] for i in index])
    assert shown >= 0.9 * len(sent) and _shown_faces(leaked) == []
