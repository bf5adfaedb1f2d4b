"""Photos through `p3m cutout`: names kept, any sizes, one by one, as `p3m image` names its files."""
from __future__ import annotations

from pathlib import Path

import cv2
import helpers.doubles  # noqa: F401 - registers the red-key test model
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.media import square_image

from stream.cli.main import main

SIZES = {"wide": (64, 48), "tall": (40, 72), "small": (33, 21)}      # width, height: one of each


def run(*args: object) -> object:
    return CliRunner().invoke(main, ["cutout", *map(str, args), "--model", "red-key", "--infer-size", "64",
                                     "-q"])


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, (w, h) in SIZES.items():
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(square_image(0, w, h), cv2.COLOR_RGB2BGR))
    return folder


def test_one_photo_keeps_its_name_in_the_output_folder(photos, tmp_path):
    result = run(photos / "wide.jpg", "-o", f"{tmp_path / 'out'}/", "-b", "#0000ff")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["wide.png"]
    rgb = cv2.imread(str(tmp_path / "out" / "wide.png"))[..., ::-1].astype(int)
    assert np.abs(rgb[40:46, 40:60] - [0, 0, 255]).max() <= 2 and rgb[22:26, 8:12, 0].mean() > 200
    assert "1 photo in" in result.output


def test_a_folder_of_mixed_sizes_is_cut_out_photo_by_photo(photos, tmp_path):
    out, mattes = tmp_path / "out", tmp_path / "mattes"
    result = run(photos, "-o", out, "-b", "transparent", "--alpha-out", mattes)
    assert result.exit_code == 0, result.output
    assert "3 photos in" in result.output
    for name, (w, h) in SIZES.items():
        rgba = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        matte = cv2.imread(str(mattes / f"{name}_alpha.png"), cv2.IMREAD_GRAYSCALE)
        assert rgba.shape == (h, w, 4) and matte.shape == (h, w)
        expected = (cv2.imread(str(photos / f"{name}.jpg"))[..., 2] > 150) * 255
        assert np.mean(np.abs(rgba[..., 3].astype(int) - expected) > 128) < 0.02
        assert np.abs(matte.astype(int) - rgba[..., 3]).max() <= 1


def test_one_photo_into_a_png_file(photos, tmp_path):
    result = run(photos / "tall.jpg", "-o", tmp_path / "cut.png")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "cut.png")).shape == (72, 40, 3)


def test_existing_photos_are_refused_without_overwrite(photos, tmp_path):
    assert run(photos / "wide.jpg", "-o", tmp_path).exit_code == 0
    again = run(photos / "wide.jpg", "-o", tmp_path)
    assert again.exit_code == 1 and again.output.startswith(f"error: -o {tmp_path / 'wide.png'} exists")
    assert run(photos / "wide.jpg", "-o", tmp_path, "-y").exit_code == 0


def test_a_sequence_of_mixed_sizes_names_the_photo_way(photos, tmp_path):
    result = run(photos, "-o", tmp_path / "seq" / "%03d.png")
    assert result.exit_code == 1
    assert "give a folder: -o out/" in result.output.splitlines()[1]


def test_photos_cannot_be_cut_in_time(photos, tmp_path):
    result = run(photos, "-o", tmp_path / "out", "--start", "1")
    assert result.exit_code == 1 and result.output.startswith("error: --start, --duration, --frames and --matte")
