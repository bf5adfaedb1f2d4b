"""Foreground colour estimation at partial-alpha edges (model/foreground.py, model/foreground_torch.py) as the
compositor uses it: on a scene with known F, α and backgrounds, the halo of the old background is gone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.doubles import cuda
from helpers.halo_scene import GREEN, MAGENTA, halo_scene, naive_composite

from model.foreground import estimate_band, estimate_foreground, fit_to_pixels
from model.foreground_band import composite
from stream.frames import Frame
from stream.stages.compositing import Compositor, blend

HEX = "#{:02x}{:02x}{:02x}".format(*MAGENTA)


@pytest.fixture(scope="module")
def scene():
    return halo_scene(240, 320)


def _frame(image: np.ndarray, alpha: np.ndarray) -> Frame:
    return Frame(index=0, image=image, alpha=alpha)


def test_the_halo_is_at_most_half_the_naive_composites(scene):
    naive = scene.band_error(naive_composite(scene.image, scene.alpha, MAGENTA), MAGENTA)
    out = Compositor(HEX).process(_frame(scene.image, scene.alpha)).output
    assert naive > 5                                   # the scene has a halo to remove: green in every strand
    assert scene.band_error(out, MAGENTA) <= 0.5 * naive, (scene.band_error(out, MAGENTA), naive)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
def test_the_device_path_meets_the_halo_target_too(scene, device):
    """Compositor.composite_tensor (CUDA's compositing; on CPU tensors as its stand-in) estimates F as well."""
    naive = scene.band_error(naive_composite(scene.image, scene.alpha, MAGENTA), MAGENTA)
    images, alphas = (torch.from_numpy(x)[None].to(device) for x in (scene.image, scene.alpha))
    out = Compositor(HEX).composite_tensor(images, alphas, [scene.image])[0].cpu().numpy()
    assert scene.band_error(out, MAGENTA) <= 0.5 * naive, (scene.band_error(out, MAGENTA), naive)


def test_a_transparent_output_carries_the_foreground_colour(scene):
    rgba = Compositor("transparent").process(_frame(scene.image, scene.alpha)).output
    band = (scene.alpha > 0.5 / 255) & (scene.alpha < 254.5 / 255)
    truth = scene.foreground * 255
    # weighted by α: what a viewer sees of a pixel's colour once it is composited anywhere
    ours = (np.abs(rgba[..., :3] - truth) * scene.alpha[..., None])[band].mean()
    frames = (np.abs(scene.image - truth) * scene.alpha[..., None])[band].mean()
    assert ours <= 0.5 * frames, (ours, frames)
    np.testing.assert_array_equal(rgba[..., 3], np.round(scene.alpha * 255).astype(np.uint8))


def test_only_the_band_changes(scene):
    """Where α is 0 or 1 in 8 bits the composite is the plain blend, pixel for pixel; off, it is the blend."""
    background = np.broadcast_to(np.uint8(MAGENTA), scene.image.shape).copy()
    plain = blend(scene.image, background, scene.alpha)
    out = Compositor(HEX).process(_frame(scene.image, scene.alpha)).output
    alpha8 = np.round(scene.alpha * 255)
    solid = (alpha8 == 0) | (alpha8 == 255)
    np.testing.assert_array_equal(out[solid], plain[solid])
    assert (out[~solid] != plain[~solid]).any()
    off = Compositor(HEX, foreground_estimation=False).process(_frame(scene.image, scene.alpha)).output
    np.testing.assert_array_equal(off, plain)


def test_the_compiled_pass_paints_what_the_numpy_steps_give(scene):
    """The compositor's one-pass kernel (model/foreground_band.py) against the numpy steps: estimate_band's
    colours in the band, the plain blend (or the frame's colours and its 8-bit alpha, transparent) elsewhere."""
    band = estimate_band(scene.image, scene.alpha)
    alpha8 = np.round(scene.alpha * 255).astype(np.uint8)
    background = np.broadcast_to(np.uint8(MAGENTA), scene.image.shape).copy()
    outside = np.setdiff1d(np.arange(alpha8.size), band.index)
    picture = np.zeros_like(scene.image)
    composite(scene.image, scene.alpha, alpha8, picture, background)
    np.testing.assert_allclose(picture.reshape(-1, 3)[band.index], band.composite(background), atol=1)
    plain = blend(scene.image, background, scene.alpha)
    np.testing.assert_array_equal(picture.reshape(-1, 3)[outside], plain.reshape(-1, 3)[outside])
    rgba = np.zeros((*scene.alpha.shape, 4), np.uint8)
    composite(scene.image, scene.alpha, alpha8, rgba)
    np.testing.assert_allclose(rgba.reshape(-1, 4)[band.index, :3], band.foreground_uint8(), atol=2)
    np.testing.assert_array_equal(rgba.reshape(-1, 4)[outside, :3], scene.image.reshape(-1, 3)[outside])
    np.testing.assert_array_equal(rgba[..., 3], alpha8)


def test_a_hard_matte_needs_no_estimate(scene):
    hard = (scene.alpha > 0.5).astype(np.float32)
    assert estimate_band(scene.image, hard) is None
    np.testing.assert_array_equal(estimate_foreground(scene.image, hard), scene.image)


def test_the_fit_recomposes_the_frame_on_its_old_background(scene):
    """F and B as fitted reproduce each edge pixel over its own background (before 8-bit rounding)."""
    band = estimate_band(scene.image, scene.alpha)
    colour = scene.image.reshape(-1, 3)[band.index].astype(np.float32) / 255
    again = band.alpha * band.foreground + (1 - band.alpha) * band.background
    inside = ((band.foreground > 0) & (band.foreground < 1) & (band.background > 0) & (band.background < 1)).all(1)
    assert inside.mean() > 0.5                          # most pixels fit without clipping
    np.testing.assert_allclose(again[inside], colour[inside], atol=1e-5)
    # numpy and torch give the same fit
    args = [colour, band.alpha, band.foreground * 0.5, band.background * 0.5 + 0.2]
    np.testing.assert_allclose(fit_to_pixels(*args)[0],
                               fit_to_pixels(*map(torch.from_numpy, args))[0].numpy(), atol=1e-6)


def test_green_spill_is_removed_from_the_strands(scene):
    """The strands of the composite are no greener than the truth: the old background's colour is gone."""
    out = Compositor(HEX).process(_frame(scene.image, scene.alpha)).output.astype(np.float32)
    naive = naive_composite(scene.image, scene.alpha, MAGENTA).astype(np.float32)
    truth = scene.truth_over(MAGENTA).astype(np.float32)
    strands = (scene.alpha > 0.2) & (scene.alpha < 0.8)
    green = GREEN.index(max(GREEN))
    assert (naive[strands, green] - truth[strands, green]).mean() > 20
    assert abs((out[strands, green] - truth[strands, green]).mean()) < 3
