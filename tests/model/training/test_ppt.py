"""Face obfuscation for privacy-preserving training, on a real unblurred portrait (skimage's astronaut)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from model.cli import prepare_ppt_command
from model.errors import P3MError
from model.faces import FaceDetector, clip, obscure, pad
from model.training.ppt import prepare_ppt

data = pytest.importorskip("skimage.data")


def _laplacian_var(rgb: np.ndarray, box) -> float:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[box.y0: box.y1, box.x0: box.x1]
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def portrait_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """images/ + alphas/: the astronaut (PNG, lossless) and a texture with no face."""
    root = tmp_path_factory.mktemp("portraits")
    (root / "images").mkdir()
    (root / "alphas").mkdir()
    astronaut = data.astronaut()
    cv2.imwrite(str(root / "images" / "astronaut.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    yy, xx = np.mgrid[0:256, 0:256]
    texture = np.stack([(xx * 3) % 256, (yy * 5) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    cv2.imwrite(str(root / "images" / "texture.png"), texture)
    for name, shape in (("astronaut", astronaut.shape[:2]), ("texture", (256, 256))):
        alpha = np.zeros(shape, np.uint8)
        alpha[shape[0] // 8:, shape[1] // 4: 3 * shape[1] // 4] = 255
        alpha[shape[0] // 8:, shape[1] // 4 - 4: shape[1] // 4] = 128
        cv2.imwrite(str(root / "alphas" / f"{name}.png"), alpha)
    return root


def test_prepare_ppt_blurs_the_face_and_nothing_else(portrait_set: Path, tmp_path: Path):
    out = tmp_path / "ppt"
    result = CliRunner().invoke(prepare_ppt_command, ["--in", str(portrait_set), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "2 images, 1 faces obfuscated, 1 images with no face found" in result.output

    original = data.astronaut()
    with FaceDetector() as detect:
        (face,) = detect(original)  # the unpadded box the detector reports
        blurred = cv2.cvtColor(cv2.imread(str(out / "blurred_image" / "astronaut.png")), cv2.COLOR_BGR2RGB)
        assert detect(blurred) == []  # the detector no longer finds a face
    assert _laplacian_var(blurred, face) <= 0.2 * _laplacian_var(original, face)

    mask = cv2.imread(str(out / "facemask" / "astronaut.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == original.shape[:2] and set(np.unique(mask)) == {0, 255}
    assert np.all(mask[face.y0: face.y1, face.x0: face.x1] == 255)  # the mask covers the face
    assert np.count_nonzero(mask) < 0.15 * mask.size  # ... and not much more
    np.testing.assert_array_equal(blurred[mask == 0], original[mask == 0])  # the rest is unchanged

    for name in ("astronaut", "texture"):  # alphas copied byte for byte
        assert (out / "mask" / f"{name}.png").read_bytes() == (portrait_set / "alphas" / f"{name}.png").read_bytes()
    assert (out / "no_face.txt").read_text() == "texture.png\n"
    texture_out = cv2.imread(str(out / "blurred_image" / "texture.png"))
    np.testing.assert_array_equal(texture_out, cv2.imread(str(portrait_set / "images" / "texture.png")))
    assert not cv2.imread(str(out / "facemask" / "texture.png"), cv2.IMREAD_GRAYSCALE).any()


def test_pixelate_style_hides_the_face_too():
    original = data.astronaut()
    h, w = original.shape[:2]
    with FaceDetector() as detect:
        boxes = [clip(pad(b, 0.25), (w, h)) for b in detect(original)]
        pixelated = obscure(original.copy(), boxes, "pixelate")
        assert detect(pixelated) == []
    inside = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert np.abs(pixelated.astype(int) - original)[inside].mean() > 5
    np.testing.assert_array_equal(pixelated[~inside], original[~inside])


@pytest.mark.parametrize("ppt_style, stage_style", [("pixelate", "pixelate"), ("blur", "gaussian")])
def test_prepare_ppt_and_the_cut_out_hide_a_face_alike(portrait_set: Path, tmp_path: Path, ppt_style, stage_style):
    from stream.frames import Frame
    from stream.stages.faces import FaceBlur

    prepare_ppt(portrait_set, tmp_path / "ppt", ppt_style)
    original = data.astronaut()
    hidden = cv2.cvtColor(cv2.imread(str(tmp_path / "ppt" / "blurred_image" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    ys, xs = np.nonzero(cv2.imread(str(tmp_path / "ppt" / "facemask" / "astronaut.png"), cv2.IMREAD_GRAYSCALE))
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    np.testing.assert_array_equal(hidden, obscure(original.copy(), [box], ppt_style))
    # The cut-out's and live's stage hides its (padded) boxes with the same obscure().
    finder = type("OneFace", (), {"scan": lambda self, rgb: [box], "plan": lambda self, size: []})()
    frame = FaceBlur(stage_style, finder=finder).process(Frame(index=0, image=original, output=original.copy()))
    np.testing.assert_array_equal(frame.output, obscure(original.copy(), frame.extras["faces"], ppt_style))


def test_clear_errors(portrait_set: Path, tmp_path: Path):
    with pytest.raises(P3MError, match="data folder not found"):
        prepare_ppt(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(P3MError, match="input folder"):
        prepare_ppt(portrait_set, portrait_set)
    # Through a `p3m`-style group: one line, exit code 1, no traceback.
    from stream.cli.main import _Group

    group = _Group("p3m", commands={"prepare-ppt": prepare_ppt_command})
    result = CliRunner().invoke(group, ["prepare-ppt", "--in", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "error: data folder not found" in result.output and "Traceback" not in result.output
