"""`p3m preview`: input | matte | composite of a frame or a few, as the cut-out makes them, in one PNG."""
from __future__ import annotations

from pathlib import Path

import cv2
import helpers.doubles  # noqa: F401 - registers the red-key test model
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.media import FPS, H, W, square_image, write_clip

from model.tiles import LABEL_HEIGHT
from stream.cli.main import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("preview") / "clip.mp4", frames=40, keyframes_every=10)


def preview(*args: object) -> object:
    return CliRunner().invoke(main, ["preview", *map(str, args), "--model", "red-key", "--infer-size", "64"])


def tiles(sheet: np.ndarray, row: int) -> list[np.ndarray]:
    """Row `row`'s three tiles (input, matte, composite) of a sheet of W×H tiles."""
    top = row * (LABEL_HEIGHT + H) + LABEL_HEIGHT
    return [sheet[top:top + H, k * W:(k + 1) * W] for k in range(3)]


def square_x(matte: np.ndarray) -> int:
    """The left edge of the matte's square (square_image puts it at 4 + the frame's number)."""
    return int(np.argmax(matte[24, :, 0] > 128))


def test_one_frame_at_a_time_shows_input_matte_and_composite(clip, tmp_path):
    out = tmp_path / "preview.png"
    result = preview(clip, "-o", out, "--at", "0.4", "-b", "#0000ff")
    assert result.exit_code == 0, result.output
    assert "preview of 1 frame (at 0.40 s)" in result.output
    sheet = cv2.imread(str(out))[..., ::-1]
    assert sheet.shape == (LABEL_HEIGHT + H, 3 * W, 3)
    image, matte, composite = tiles(sheet, 0)
    assert abs(square_x(matte) - (4 + round(0.4 * FPS))) <= 1           # the frame at 0.4 s: frame 10
    assert np.abs(composite[40:46, 50:60].astype(int) - [0, 0, 255]).max() <= 2     # the new background
    assert np.abs(image[40:46, 50:60].astype(int) - [0, 0, 80]).max() <= 8          # the input's own


def test_a_few_frames_spread_from_at_to_the_end(clip, tmp_path):
    out = tmp_path / "few.png"
    result = preview(clip, "-o", out, "--at", "0:00.4", "--frames", "3", "-b", "transparent")
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(out))[..., ::-1]
    assert sheet.shape[0] == 3 * (LABEL_HEIGHT + H)
    assert [square_x(tiles(sheet, r)[1]) for r in range(3)] == [4 + 10, 4 + 20, 4 + 30]    # 0.4, 0.8, 1.2 s
    background = tiles(sheet, 0)[2][40:48, 40:64]
    assert {int(v) for v in np.unique(background)} <= {150, 200}       # transparent: a checkerboard


def test_preview_takes_the_cut_outs_matting_options():
    def options(name: str) -> dict[str, dict]:
        return {p.name: p.to_info_dict() for p in main.commands[name].params}

    cutout, mine = options("cutout"), options("preview")
    for name in ("model", "weights", "infer_size", "background", "threshold", "erode", "dilate", "feather", "spill",
                 "subjects", "refine", "blur_faces", "config_file"):
        assert mine[name]["type"] == cutout[name]["type"], name


@pytest.mark.parametrize(("args", "message"), [
    (["--frames", "20"], "error: --frames 20: a preview shows 1 to 12 frames"),
    (["--at", "5"], "error: the start, 5 s, is past the end of"),
    (["--at", "later"], "error: --at 'later' is not a time"),
])
def test_bad_requests_are_one_error_line(clip, tmp_path, args, message):
    out = tmp_path / "p.png"
    result = preview(clip, "-o", out, *args)
    assert result.exit_code == 1 and result.output.startswith(message) and not out.exists()


def test_a_preview_is_a_png(clip, tmp_path):
    result = preview(clip, "-o", tmp_path / "p.jpg")
    assert result.exit_code == 1 and result.output.startswith("error: a preview is a PNG, not p.jpg")


def test_a_photo_is_one_row_however_many_frames_are_asked(tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(square_image(3), cv2.COLOR_RGB2BGR))
    result = preview(photo, "-o", tmp_path / "p.png", "--frames", "3")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "p.png")).shape == (LABEL_HEIGHT + H, 3 * W, 3)
