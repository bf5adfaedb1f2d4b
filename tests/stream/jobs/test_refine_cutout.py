"""`p3m cutout --refine`: the closed-form stage runs before compositing, improves a coarse matte's edges and the
summary says what it cost."""
from __future__ import annotations

import av
import cv2
import numpy as np
from click.testing import CliRunner
from helpers.halo_scene import halo_scene

from stream.cli.main import main


def _write_pngs(folder, images):
    folder.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i:05d}.png"), image if image.ndim == 2 else image[..., ::-1])
    return str(folder / "%05d.png")


def _matte(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="gray").astype(np.float32) / 255


def test_refine_improves_a_coarse_matte_and_prints_its_time(tmp_path):
    scene = halo_scene(240, 320)
    coarse = cv2.GaussianBlur((scene.alpha > 0.6).astype(np.float32), (0, 0), 3)
    image = _write_pngs(tmp_path / "in", [scene.image])
    matte = _write_pngs(tmp_path / "coarse", [np.round(coarse * 255).astype(np.uint8)])
    errors = {}
    for flag in ("--refine", "--no-refine"):
        out = tmp_path / flag.strip("-")
        result = CliRunner().invoke(main, ["cutout", image, "-o", str(out / "%05d.png"), "--matte", matte,
                                           "--alpha-out", str(out / "m.mkv"), flag])
        assert result.exit_code == 0, result.output
        assert ("refined in" in result.output) == (flag == "--refine"), result.output
        errors[flag] = np.abs(_matte(out / "m.mkv") - scene.alpha).mean()
    assert errors["--refine"] <= 0.85 * errors["--no-refine"], errors
