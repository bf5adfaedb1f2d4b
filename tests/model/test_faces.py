"""Faces: obscure() hides a real face from both bundled detectors at any size; box geometry rounds towards privacy."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.errors import P3MError
from model.faces import (
    FACE_MODELS,
    PPT_STYLES,
    STYLES,
    FaceDetector,
    FaceFinder,
    Square,
    check_style,
    clip,
    iou,
    obscure,
    pad,
)

data = pytest.importorskip("skimage.data")

FOUND = 0.4       # "strong enough" (model/faces.py): no detection of the face at this score or more
FOUND_BY_DETECTORS = 0.5   # the detectors' own threshold


@pytest.fixture(scope="module")
def detectors():
    """Both bundled detectors, on the whole image and on tiles of 1/2 and 1/4 (small faces)."""
    found = {model: FaceDetector(model, min_confidence=0.3, tile_levels=2) for model in FACE_MODELS}
    yield found
    for detector in found.values():
        detector.close()


def _astronaut(face_width: int) -> np.ndarray:
    """scikit-image's astronaut (a real, unblurred face ~101 px wide) scaled so the face is ~`face_width` px."""
    scale = face_width / 101
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(data.astronaut(), None, fx=scale, fy=scale, interpolation=interpolation)


def _laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


# The default (fill) stays under model/faces.py's line; every style under the detectors' own threshold.
@pytest.mark.parametrize(("style", "line"), [("fill", FOUND), ("blur", FOUND_BY_DETECTORS),
                                             ("pixelate", FOUND_BY_DETECTORS)])
def test_obscured_faces_are_found_by_neither_bundled_detector(detectors, style: str, line: float) -> None:
    still_found, kept_detail = [], []
    for face_width in (24, 48, 96, 256):
        image = _astronaut(face_width)
        h, w = image.shape[:2]
        faces = [max(detector(image), key=lambda box: box.score) for detector in detectors.values()]
        assert all(face.score > 0.8 for face in faces)              # each detector finds the face unobscured
        for face in faces:                                         # the box as each detector gives it
            box = clip(pad(face, 0.25), (w, h))
            hidden = obscure(image.copy(), [box], style)
            found = [(model, box) for model, detector in detectors.items() for box in detector(hidden)]
            still_found += [(face_width, model, box) for model, box in found
                            if box.score >= line and any(iou(box, f) >= 0.3 for f in faces)]
            x0, y0, x1, y1 = box
            before, after = (_laplacian_variance(img[y0:y1, x0:x1]) for img in (image, hidden))
            if after > 0.1 * before:                               # the bar: detail drops by 90 % or more
                kept_detail.append((face_width, round(after / before, 3)))
    assert still_found == [] and kept_detail == []


def test_padding_then_clipping_rounds_outwards() -> None:
    # A 5×6 box padded by a quarter: 1.25 px more on each side, 1.5 above and below; whole pixels round out.
    assert clip(pad((10, 10, 15, 16), 0.25), (640, 480)) == (8, 8, 17, 18)
    assert clip(pad((2, 470, 20, 479), 0.5), (640, 480)) == (0, 465, 29, 480)     # and stop at the image's edges
    assert clip((700.0, 10.0, 720.0, 30.0), (640, 480)) is None


def test_style_names_of_both_commands_name_one_style_each() -> None:
    assert set(STYLES) | set(PPT_STYLES) == {"pixelate", "gaussian", "blur", "fill"}
    assert check_style("gaussian") == check_style("blur") != check_style("pixelate")
    with pytest.raises(P3MError, match="blur style"):
        check_style("swirl")


def test_a_missed_face_is_looked_for_by_one_detector_a_call_in_turn(monkeypatch) -> None:
    calls: list[str] = []
    looked = FaceDetector.in_region

    def counted(self: FaceDetector, rgb: np.ndarray, square: Square) -> list:
        calls.append(self.model)
        return looked(self, rgb, square)

    monkeypatch.setattr(FaceDetector, "in_region", counted)
    blank = np.full((240, 320, 3), 90, np.uint8)
    with FaceFinder() as finder:
        for missed in range(4):
            assert finder.refind(blank, (100, 60, 160, 120), missed) is None
    assert calls == ["short", "full", "short", "full", "short"]     # both while found; then one a frame, in turn
