"""Face blur: real faces found and hidden, nothing else touched, boxes held through detection blinks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.errors import P3MError
from model.faces import STYLES, FaceDetector, iou, obscure
from stream.frames import Frame
from stream.jobs.demo import make_demo_clip
from stream.pipeline.runner import Pipeline
from stream.protocols import Sink
from stream.sources.files import open_source
from stream.stages.compositing import Compositor
from stream.stages.faces import FaceBlur, FaceTracker


@pytest.fixture(scope="module")
def portrait_frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Six frames of an H.264 clip made from a real, unblurred portrait (scikit-image's astronaut), decoded."""
    clip = make_demo_clip(tmp_path_factory.mktemp("faces") / "astronaut.mp4", seconds=0.2, size=(640, 480), fps=30)
    with open_source(str(clip)) as source:
        return [frame.image for frame in source]


@pytest.fixture(scope="module")
def detector():
    detector = FaceDetector("short", tile_levels=0)
    yield detector
    detector.close()


def _laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _inside(boxes: list[tuple[int, int, int, int]], shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("style", ["pixelate", "gaussian"])
def test_faces_are_found_then_hidden_and_nothing_else_changes(portrait_frames, detector, style: str) -> None:
    stage = FaceBlur(style, detector=detector)
    found_before = found_after = 0
    for i, image in enumerate(portrait_frames):
        faces = detector(image)
        found_before += len(faces)
        frame = stage.process(Frame(index=i, image=image, output=image.copy()))
        # The face found again: a detection on the same spot (not a head-and-shoulders blob around it).
        found_after += sum(iou(after, face) > 0.3 for after in detector(frame.output) for face in faces)
        for x0, y0, x1, y1, _ in faces:
            before = _laplacian_variance(image[y0:y1, x0:x1])
            after = _laplacian_variance(frame.output[y0:y1, x0:x1])
            assert after <= 0.2 * before, f"frame {i}: face detail only fell from {before:.0f} to {after:.0f}"
        outside = ~_inside(frame.extras["faces"], image.shape)
        assert outside.any() and np.array_equal(frame.output[outside], image[outside])
    assert found_before == len(portrait_frames)          # one face in every frame of the real portrait
    assert found_after <= len(portrait_frames) // 5      # (nearly) none once blurred


def test_blur_never_writes_into_the_camera_image(portrait_frames, detector) -> None:
    image = portrait_frames[0]
    original = image.copy()
    frame = FaceBlur(detector=detector).process(Frame(index=0, image=image))   # no output yet: blurs a copy
    assert np.array_equal(image, original) and not np.array_equal(frame.output, original)


@pytest.mark.parametrize("style", STYLES)
def test_the_stage_hides_faces_exactly_as_obscure_does(portrait_frames, style: str) -> None:
    image = portrait_frames[0]
    stage = FaceBlur(style, detector=lambda image: [(280.0, 80.0, 370.0, 170.0)])
    frame = stage.process(Frame(index=0, image=image, output=image.copy()))
    # prepare-ppt hides faces with obscure() too (tests/model/training/test_ppt.py): one strength for both.
    np.testing.assert_array_equal(frame.output, obscure(image.copy(), frame.extras["faces"], style))


class _Opaque:
    """A matting stand-in: the whole frame is the person."""

    def process(self, frame: Frame) -> Frame:
        frame.alpha = np.ones(frame.image.shape[:2], np.float32)
        return frame


class _Keep(Sink):
    def __init__(self) -> None:
        self.path, self.outputs = "memory", []

    def write(self, frame: Frame) -> None:
        self.outputs.append(frame.output)
        self.frames_written += 1


def test_face_blur_is_an_ordinary_stage_of_the_offline_pipeline(portrait_frames, detector, tmp_path) -> None:
    clip = make_demo_clip(tmp_path / "astronaut.mp4", seconds=0.2, size=(640, 480), fps=30)
    sink = _Keep()
    with open_source(str(clip)) as source:
        stages = [_Opaque(), Compositor("green"), FaceBlur("gaussian", detector=detector)]
        Pipeline(source, stages, sink, policy="offline").run()
    assert len(sink.outputs) == len(portrait_frames)
    assert not any(iou(after, face) > 0.3 for output, image in zip(sink.outputs, portrait_frames)
                   for after in detector(output) for face in detector(image))


def test_full_range_model_also_finds_the_face(portrait_frames) -> None:
    with_full = FaceDetector("full", tile_levels=0)
    try:
        assert len(with_full(portrait_frames[0])) == 1
    finally:
        with_full.close()


class Blinking:
    """A scripted detector: frame i's boxes from `script[i]` (empty lists are detection blinks)."""

    def __init__(self, script: list[list[tuple[float, float, float, float]]]) -> None:
        self.script, self.calls = script, 0

    def __call__(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        boxes = self.script[self.calls] if self.calls < len(self.script) else []
        self.calls += 1
        return boxes


def test_a_blinking_detection_keeps_the_last_box_for_a_few_frames(portrait_frames) -> None:
    face = (280.0, 80.0, 370.0, 170.0)
    hold = 4
    script = [[face]] * 3 + [[]] * (hold + 2) + [[face]]
    stage = FaceBlur("pixelate", detector=Blinking(script), tracker=FaceTracker(hold=hold))
    image = portrait_frames[0]
    x0, y0, x1, y1 = (int(v) for v in face)
    blurred = []
    for i in range(len(script)):
        frame = stage.process(Frame(index=i, image=image, output=image.copy()))
        blurred.append(not np.array_equal(frame.output[y0:y1, x0:x1], image[y0:y1, x0:x1]))
    # Seen in 0-2, held through the blink (3 .. 3+hold-1), released after, found again at the end.
    assert blurred == [True] * 3 + [True] * hold + [False] * 2 + [True]


def test_smoothed_box_always_covers_the_newest_detection() -> None:
    tracker = FaceTracker(padding=0.0, smoothing=0.9)
    for step in range(8):                                  # a face moving 30 px per frame: the smoothed box lags
        x = 100.0 + 30 * step
        regions = tracker.update([(x, 100.0, x + 80, 180.0)], (640, 480))
        assert any(x0 <= x and x1 >= x + 80 and y0 <= 100 and y1 >= 180 for x0, y0, x1, y1 in regions)


def test_boxes_are_clipped_to_the_frame_and_alpha_is_left_alone() -> None:
    rgba = np.random.default_rng(0).integers(0, 255, (60, 80, 4), dtype=np.uint8)
    original = rgba.copy()
    (box,) = FaceTracker().update([(-20.0, -20.0, 30.0, 30.0)], (80, 60))
    assert box[0] == 0 and box[1] == 0
    obscure(rgba, [box], "gaussian")
    assert np.array_equal(rgba[..., 3], original[..., 3]) and not np.array_equal(rgba[..., :3], original[..., :3])


def test_bad_style_or_model_is_a_p3m_error() -> None:
    with pytest.raises(P3MError, match="blur style"):
        FaceBlur("swirl", detector=lambda image: [])
    with pytest.raises(P3MError, match="face model"):
        FaceBlur("pixelate", "medium", detector=lambda image: [])
