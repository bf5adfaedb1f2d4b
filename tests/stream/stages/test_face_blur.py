"""Face blur as a stage: hidden as obscure() hides, first frame swept whole, held through blinks, traced back
(offline), covered on a failed check (live), and `others` keeps the subject's face."""
from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from helpers.doubles import ListSink

from model.errors import P3MError
from model.faces import FaceBox, FaceFinder, Square, iou, obscure
from stream.frames import Frame
from stream.pipeline.queues import Cancelled
from stream.pipeline.runner import Pipeline
from stream.stages.face_ahead import CheckAhead
from stream.stages.faces import FaceBlur
from tests.helpers.face_media import FaceCheck

data = pytest.importorskip("skimage.data")
FACE = FaceBox(280, 80, 370, 170, 0.9)


class Scripted:
    """A finder double: the sweep finds FACE in the frames of `found_at`; around a known face, FACE when
    `refound`. Counts whole sweeps; `missed` holds what each refind was told of the frames the face went unfound."""

    def __init__(self, found_at: set[int], refound: bool = True, fail: bool = False) -> None:
        self.found_at, self.refound, self.fail, self.scans, self.index = found_at, refound, fail, 0, 0
        self.missed: list[int] = []

    def plan(self, size):
        return [("short", Square(0, 0, 100))]

    def scan(self, rgb):
        self.scans += 1
        return self.find(rgb, [])

    def find(self, rgb, jobs):
        if self.fail:
            raise RuntimeError("detector down")
        return [FACE] if int(rgb[0, 0, 0]) in self.found_at else []

    def refind(self, rgb, box, missed=0):
        self.missed.append(missed)
        return FACE if self.refound else None


class Watched(Scripted):
    """The scripted finder, with an event per frame index set when that frame's check begins."""

    def __init__(self, found_at: set[int], frames: int) -> None:
        super().__init__(found_at)
        self.begun = {i: threading.Event() for i in range(frames)}

    def find(self, rgb, jobs):
        self.begun[int(rgb[0, 0, 0])].set()
        return super().find(rgb, jobs)

    def refind(self, rgb, box, missed=0):
        self.begun[int(rgb[0, 0, 0])].set()
        return super().refind(rgb, box, missed)


class WaitsForTheCheck:
    """A compositor double that ends a frame only once its face check has begun (or 5 s have passed)."""

    name = "compositor"

    def __init__(self, begun: dict[int, threading.Event]) -> None:
        self.begun, self.overlapped = begun, []

    def process(self, frame: Frame) -> Frame:
        self.overlapped.append(self.begun[frame.index].wait(5))
        return frame


def _frames(n: int) -> list[Frame]:
    """`n` frames of noise, frame i stamped i in its first pixel (the scripted finder reads it)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        image = rng.integers(0, 255, (240, 480, 3), dtype=np.uint8)
        image[0, 0, 0] = i
        frames.append(Frame(index=i, image=image, output=image.copy()))
    return frames


def _hidden(frame: Frame) -> bool:
    x0, y0, x1, y1 = FACE[:4]
    return not np.array_equal(frame.output[y0:y1, x0:x1], frame.image[y0:y1, x0:x1])


def test_the_first_frame_is_swept_whole_and_only_the_face_boxes_change() -> None:
    finder = Scripted({0})
    stage = FaceBlur("pixelate", finder=finder)
    frame = stage.process(_frames(1)[0])
    assert finder.scans == 1 and _hidden(frame)
    np.testing.assert_array_equal(frame.output, obscure(frame.image.copy(), frame.extras["faces"], "pixelate"))
    assert stage.frames_hidden == 1


def test_a_face_not_found_again_stays_hidden_for_hold_frames() -> None:
    stage = FaceBlur(finder=Scripted({0}, refound=False), hold=4)
    hidden = [_hidden(stage.process(frame)) for frame in _frames(8)]
    assert hidden == [True] * 5 + [False] * 3          # found in 0, held in 1-4, released after


def test_live_tells_the_finder_how_long_a_face_went_unfound_and_offline_does_not() -> None:
    live = Scripted({0}, refound=False)
    FaceBlur(finder=live, hold=4).process_batch(_frames(6))
    assert live.missed == [0, 1, 2, 3, 4]             # both detectors while found, then one a frame (model/faces.py)
    offline = Scripted({0}, refound=False)
    stage = FaceBlur(finder=offline, hold=4, lookback=3, sweep_per_frame=1)
    stage.process_batch(_frames(6))
    stage.flush()
    assert offline.missed and set(offline.missed) == {0}     # the look-back's tracks keep both detectors


def test_offline_look_back_hides_a_face_before_the_frame_it_was_found_in() -> None:
    stage = FaceBlur(finder=Scripted({6}), lookback=8, sweep_per_frame=1)
    frames = _frames(10)
    out = stage.process_batch(frames) + stage.flush()
    assert [f.index for f in out] == list(range(10))
    assert all(_hidden(f) for f in out)                # frames 0-5 too, traced back from frame 6
    live = FaceBlur(finder=Scripted({6}))
    assert [_hidden(live.process(f)) for f in _frames(10)] == [False] * 6 + [True] * 4    # without look-back


def test_live_covers_the_frame_when_the_face_check_fails() -> None:
    frame = _frames(1)[0]
    with pytest.raises(RuntimeError, match="detector down"):
        FaceBlur(finder=Scripted(set(), fail=True)).process(frame)             # offline: the job fails
    stage = FaceBlur(finder=Scripted(set(), fail=True), cover_on_error=True)
    frames = [stage.process(f) for f in _frames(2)[1:]]
    assert stage.frames_covered == 1 and np.ptp(frames[0].output.reshape(-1, 3), axis=0).max() == 0
    ahead = FaceBlur(finder=Scripted(set(), fail=True), cover_on_error=True)       # the check made ahead
    try:
        covered = ahead.process(ahead.check_ahead().process(_frames(1)[0]))
    finally:
        ahead.close()
    assert ahead.frames_covered == 1 and np.ptp(covered.output.reshape(-1, 3), axis=0).max() == 0


def test_live_checks_each_frame_beside_its_compositing_and_sends_none_unchecked() -> None:
    finder = Watched(set(range(12)), frames=12)
    stage = FaceBlur(finder=finder, cover_on_error=True)
    compositor, sink = WaitsForTheCheck(finder.begun), ListSink()
    try:
        Pipeline(_frames(12), [stage.check_ahead(), compositor, stage], sink, policy="live").run()
    finally:
        stage.close()
    assert compositor.overlapped and all(compositor.overlapped)    # no frame's compositing ended before its check began
    sent = [frame.index for frame in sink.frames]
    assert sent == sorted(sent) and sent[-1] == 11                 # in order, stale frames dropped, the last one sent
    assert all(_hidden(frame) for frame in sink.frames) and stage.frames_hidden == len(sent)
    assert not [t for t in threading.enumerate() if t.name.startswith("p3m-")]


def _gated(gate: threading.Event) -> Callable[[Frame], int]:
    return lambda frame: gate.wait(5) and frame.index


def test_the_check_ahead_holds_a_frame_back_while_another_waits_for_the_worker() -> None:
    gate = threading.Event()
    ahead = CheckAhead(_gated(gate))
    frames = _frames(3)
    ahead.process(frames[0])                      # the worker takes it and waits at the gate
    ahead.process(frames[1])                      # waits for the worker
    third = threading.Thread(target=ahead.process, args=(frames[2],))
    third.start()
    third.join(0.2)
    assert third.is_alive()                       # no backlog: the live queue before the stage drops frames instead
    gate.set()
    third.join(5)
    assert [ahead.result(frame) for frame in frames] == [0, 1, 2]
    ahead.close()


def test_a_stop_ends_every_wait_for_the_face_check() -> None:
    gate, stop = threading.Event(), threading.Event()
    ahead = CheckAhead(_gated(gate))
    ahead.should_stop = stop.is_set
    frames = _frames(3)
    ahead.process(frames[0])
    ahead.process(frames[1])
    ended: list[str] = []

    def wait(call: Callable[[Frame], object], frame: Frame) -> None:
        try:
            call(frame)
        except Cancelled:
            ended.append(call.__name__)

    waits = [threading.Thread(target=wait, args=(ahead.process, frames[2])),      # for room at the worker
             threading.Thread(target=wait, args=(ahead.result, frames[1]))]       # for a frame's check
    for thread in waits:
        thread.start()
    stop.set()
    for thread in waits:
        thread.join(2)
    assert sorted(ended) == ["process", "result"]
    gate.set()
    ahead.close()


def _two_faces() -> tuple[np.ndarray, np.ndarray]:
    """Two astronauts side by side; the matte keeps the left one."""
    person = cv2.resize(data.astronaut(), (320, 320), interpolation=cv2.INTER_AREA)
    image = np.concatenate([person, person], axis=1)
    alpha = np.zeros(image.shape[:2], np.float32)
    alpha[:, :320] = 1.0
    return image, alpha


def test_others_keeps_the_subjects_face_and_hides_the_other() -> None:
    image, alpha = _two_faces()
    check = FaceCheck()
    try:
        faces = sorted((b for b in check.detectors[0](image) if b.score > 0.8), key=lambda b: b.x0)
        assert len(faces) == 2 and faces[0].x1 < 320 < faces[1].x0
        results = {}
        for whose in ("all", "others"):
            stage = FaceBlur(whose=whose)
            try:
                out = stage.process(Frame(index=0, image=image, output=image.copy(), alpha=alpha)).output
            finally:
                stage.close()
            results[whose] = [check.score(out, face) for face in faces]
        assert results["others"][0] > 0.8 and results["others"][1] < 0.5       # the subject's face kept
        assert max(results["all"]) < 0.5
    finally:
        check.close()


def test_the_real_finder_finds_small_faces_in_a_wide_frame() -> None:
    # The cut-out's old whole-frame pass missed this face (854×480 squeezed into the detector's square).
    person = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    image = np.full((480, 854, 3), 90, np.uint8)
    image[:, 187:667] = person
    with FaceFinder() as finder:
        faces = finder.scan(image)
    assert any(iou(face, (352, 69, 445, 164)) > 0.5 for face in faces)


def test_bad_style_whose_or_model_is_a_p3m_error() -> None:
    with pytest.raises(P3MError, match="blur style"):
        FaceBlur("swirl", finder=Scripted(set()))
    with pytest.raises(P3MError, match="face model"):
        FaceBlur("fill", "medium", finder=Scripted(set()))
    with pytest.raises(P3MError, match="blur-faces"):
        FaceBlur("fill", whose="mine", finder=Scripted(set()))
