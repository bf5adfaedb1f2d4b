"""`p3m cutout IN -o OUT --matte MATTE` (stream/sources/matte.py): the alpha from a grayscale video or image
sequence instead of a model; round trip with --alpha-out, the halo target through the command, clear errors."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.halo_scene import MAGENTA, halo_scene, naive_composite
from helpers.media import H, N, W, write_clip

from model.errors import P3MError
from model.matters.base import Matter
from model.matters.registry import register_matter
from stream import cutout
from stream.cli.main import main

HEX = "#{:02x}{:02x}{:02x}".format(*MAGENTA)


class SoftRedKeyMatter(Matter):
    """A test double with soft edges: the red square's mask, blurred (so edges have 0 < α < 1)."""

    name = "soft-red-key"

    def describe(self) -> str:
        return "soft red-key test double"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = ((rgb[..., 0] > 150) & (rgb[..., 2] < 120)).astype(np.float32)
        return cv2.GaussianBlur(mask, (0, 0), 1.5)


register_matter("soft-red-key", lambda weights, device, precision: SoftRedKeyMatter())


def _gray_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray") for f in container.decode(video=0)]


def _pngs(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p))[..., ::-1] for p in sorted(folder.glob("*.png"))]


def _write_pngs(folder: Path, images: list[np.ndarray]) -> str:
    folder.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i:05d}.png"), image if image.ndim == 2 else image[..., ::-1])
    return str(folder / "%05d.png")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("matte") / "in.mp4")


@pytest.fixture(scope="module")
def matte(clip, tmp_path_factory) -> Path:
    """The soft double's matte of `clip`, written losslessly by a first run (--alpha-out m.mkv)."""
    out = tmp_path_factory.mktemp("first")
    cutout(clip, out / "green.mp4", model="soft-red-key", alpha_out=str(out / "m.mkv"), quiet=True)
    return out / "m.mkv"


def test_round_trip_recomposes_without_the_model(clip, matte, tmp_path):
    """--alpha-out m.mkv, then --matte m.mkv onto another background: the same alpha comes back out, and the
    composite is what running the model with that background gives (within the matte's 8-bit rounding)."""
    given = cutout(clip, tmp_path / "b" / "%05d.png", matte=str(matte), background=HEX,
                   alpha_out=str(tmp_path / "again.mkv"), quiet=True)
    assert given.frames == N and "matte" in given.model
    first, again = _gray_frames(matte), _gray_frames(tmp_path / "again.mkv")
    assert len(first) == len(again) == N
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    cutout(clip, tmp_path / "c" / "%05d.png", model="soft-red-key", background=HEX, quiet=True)
    recomposed, direct = _pngs(tmp_path / "b"), _pngs(tmp_path / "c")
    assert len(recomposed) == len(direct) == N
    for i, (mine, theirs) in enumerate(zip(recomposed, direct)):
        assert np.abs(mine.astype(int) - theirs.astype(int)).max() <= 3
        outside = first[i] == 0
        assert outside.any() and (mine[outside] == MAGENTA).all()


def test_the_halo_target_through_the_command(tmp_path):
    """The synthetic strands over green, recomposed onto magenta with --matte giving the true α: the colour
    error where 0 < α < 1 is at most half the naive composite's (--no-foreground-estimation)."""
    scene = halo_scene(240, 320)
    image = _write_pngs(tmp_path / "in", [scene.image])
    alpha = _write_pngs(tmp_path / "alpha", [np.round(scene.alpha * 255).astype(np.uint8)])
    runner = CliRunner()
    for name, flag in (("ours", "--foreground-estimation"), ("naive", "--no-foreground-estimation")):
        result = runner.invoke(main, ["cutout", image, "-o", str(tmp_path / name / "%05d.png"), "--matte", alpha,
                                      "-b", HEX, flag, "-q"])
        assert result.exit_code == 0, result.output
    ours, naive = (_pngs(tmp_path / name)[0] for name in ("ours", "naive"))
    quantised = np.round(scene.alpha * 255) / 255                   # what the matte file holds
    np.testing.assert_allclose(naive, naive_composite(scene.image, quantised, MAGENTA), atol=1)
    error, naive_error = scene.band_error(ours, MAGENTA), scene.band_error(naive, MAGENTA)
    assert error <= 0.5 * naive_error, (error, naive_error)


def test_a_matte_with_fewer_frames_is_refused_before_any_output(clip, tmp_path):
    short = write_clip(tmp_path / "short.mp4", frames=N - 10, audio=False)
    cutout(short, tmp_path / "s.mp4", model="soft-red-key", alpha_out=str(tmp_path / "short.mkv"), quiet=True)
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "out.mp4"),
                                       "--matte", str(tmp_path / "short.mkv")])
    assert result.exit_code == 1
    assert f"has {N - 10} frames, the input" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_a_matte_one_frame_too_long_is_found_at_its_end(clip, matte, tmp_path):
    """An image sequence one frame longer than the input passes the up-front check (a video's count may be off by
    one) and is refused when the input ends: the partial output is removed."""
    frames = _gray_frames(matte)
    longer = _write_pngs(tmp_path / "longer", [*frames, frames[-1]])
    with pytest.raises(P3MError, match="more frames than the input's"):
        cutout(clip, tmp_path / "out.mp4", matte=longer, quiet=True)
    assert not (tmp_path / "out.mp4").exists()
    shorter = _write_pngs(tmp_path / "shorter", frames[:-1])
    with pytest.raises(P3MError, match=f"ended after {N - 1} frames"):
        cutout(clip, tmp_path / "out.mp4", matte=shorter, quiet=True)
    assert not (tmp_path / "out.mp4").exists()


def test_a_half_size_matte_is_scaled_another_shape_refused(clip, matte, tmp_path):
    frames = _gray_frames(matte)
    half = _write_pngs(tmp_path / "half", [cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
                                           for f in frames])
    result = cutout(clip, tmp_path / "half.mp4", matte=half, quiet=True)
    assert result.frames == N
    square = _write_pngs(tmp_path / "square", [cv2.resize(f, (H, H)) for f in frames])
    with pytest.raises(P3MError, match=f"is {H}x{H}, the input {W}x{H}: another shape"):
        cutout(clip, tmp_path / "square.mp4", matte=square, quiet=True)


def test_a_colour_video_is_not_a_matte(clip, tmp_path):
    result = CliRunner().invoke(main, ["cutout", str(clip), "-o", str(tmp_path / "out.mp4"), "--matte", str(clip)])
    assert result.exit_code == 1 and "has colour frames: it is not a matte" in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_a_missing_matte_is_named(clip, tmp_path):
    with pytest.raises(P3MError, match="not found"):
        cutout(clip, tmp_path / "out.mp4", matte=str(tmp_path / "nope.mkv"), quiet=True)
