"""The fast guided filter and bilinear upsampling (CPU, float32)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream.stages.guided_filter import guided_upsample_gray_cpu
from stream.stages.guided_filter_torch import (
    bilinear_upsample,
    box_mean,
    guided_upsample,
    image_to_guide,
    rgb_to_gray,
    upsample_alpha,
)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
def test_shape_range_dtype(channels):
    alpha = _rand(2, 1, 18, 32) * 1.4 - 0.2  # overshoots [0, 1] on purpose
    guide = _rand(2, channels, 72, 128, seed=1)
    out = guided_upsample(alpha, guide)
    assert out.shape == (2, 1, 72, 128) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert bilinear_upsample(alpha, (72, 128)).shape == (2, 1, 72, 128)


def test_upsample_alpha_is_bilinear_or_guided_and_makes_guides_only_for_the_guided_filter():
    # The one place that picks between the two, for the matting stage's torch path and its device path.
    alpha, guide_hr, guide_lr = _rand(2, 1, 18, 32), _rand(2, 1, 72, 128, seed=1), _rand(2, 1, 18, 32, seed=2)
    made = []

    def guides():
        made.append(True)
        return guide_hr, guide_lr

    bilinear = upsample_alpha(alpha, (72, 128), "bilinear", guides)
    assert made == [] and torch.equal(bilinear, bilinear_upsample(alpha, (72, 128)))
    guided = upsample_alpha(alpha, (72, 128), "guided", guides, radius=2, eps=1e-3)
    assert made == [True] and torch.equal(guided, guided_upsample(alpha, guide_hr, 2, 1e-3, guide_lr=guide_lr))
    with pytest.raises(ValueError, match="unknown upsample 'nearest'"):
        upsample_alpha(alpha, (72, 128), "nearest", guides)


@pytest.mark.parametrize("channels", [1, 3])
def test_constant_alpha_is_preserved(channels):
    alpha = torch.full((1, 1, 18, 32), 0.7)
    out = guided_upsample(alpha, _rand(1, channels, 45, 80))
    # float32: the 3×3 inverse of (Σ + eps) scales rounding by up to 1/eps, hence 1e-4, not 1e-6.
    torch.testing.assert_close(out, torch.full_like(out, 0.7), atol=1e-4, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_sharpens_a_blurred_edge_toward_the_guide_edge(channels):
    # A hard vertical edge at x = 130.3 in a 256×96 frame; the model saw it 4× smaller and a little soft.
    height, width, edge = 96, 256, 130.3
    x = np.arange(width) + 0.5
    truth = np.repeat((x < edge).astype(np.float32)[None], height, 0)
    noise = np.random.default_rng(0).normal(0, 0.01, (height, width))
    gray = (np.where(truth > 0.5, 0.7, 0.3) + noise).astype(np.float32)
    alpha_lr = cv2.GaussianBlur(cv2.resize(truth, (64, 24), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    guide = torch.from_numpy(gray)[None, None].expand(1, channels, height, width).contiguous()
    alpha_lr = torch.from_numpy(alpha_lr)[None, None]

    guided = guided_upsample(alpha_lr, guide)[0, 0].numpy()
    bilinear = bilinear_upsample(alpha_lr, (height, width))[0, 0].numpy()
    band = np.abs(x - edge) < 16
    err_guided, err_bilinear = (np.abs(a - truth)[:, band].mean() for a in (guided, bilinear))
    # Measured: 0.070 vs 0.116 (gray and RGB alike).
    assert err_guided < 0.7 * err_bilinear

    def ramp_width(a):  # columns of the 10-90 % transition
        profile = a.mean(0)
        return int(((profile > 0.1) & (profile < 0.9)).sum())
    assert ramp_width(guided) < ramp_width(bilinear)  # measured 10 vs 12 px


def test_matches_opencv_guided_filter_at_equal_size():
    # Same resolution in and out: the fast filter is then He et al.'s filter, which OpenCV implements.
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.random((60, 90)).astype(np.float32), (0, 0), 2)
    alpha = cv2.GaussianBlur((rng.random((60, 90)) > 0.5).astype(np.float32), (0, 0), 3)
    ref = np.clip(cv2.ximgproc.guidedFilter(gray, alpha, 3, 1e-3), 0, 1)
    ours = guided_upsample(torch.from_numpy(alpha)[None, None], torch.from_numpy(gray)[None, None], 3, 1e-3)
    inner = (slice(7, -7), slice(7, -7))  # OpenCV reflects at the border, we clip the window (2 boxes of r=3)
    np.testing.assert_allclose(ours[0, 0].numpy()[inner], ref[inner], atol=1e-4)


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_box_mean_clips_the_window_at_the_border(radius):
    x = _rand(1, 2, 7, 11)
    ref = torch.empty_like(x)
    for i in range(7):
        for j in range(11):
            window = x[..., max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1]
            ref[..., i, j] = window.mean((-1, -2))
    torch.testing.assert_close(box_mean(x, radius), ref)


def test_bilinear_matches_opencv_half_pixel_centres():
    alpha = np.random.default_rng(0).random((18, 32)).astype(np.float32)
    ours = bilinear_upsample(torch.from_numpy(alpha)[None, None], (72, 128))[0, 0].numpy()
    np.testing.assert_allclose(ours, cv2.resize(alpha, (128, 72), interpolation=cv2.INTER_LINEAR), atol=1e-5)


def test_image_to_guide():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = image_to_guide(rgb)
    assert gray.shape == (1, 1, 5, 7) and gray.dtype == torch.float32
    expected = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255
    np.testing.assert_allclose(gray[0, 0].numpy(), expected, atol=1 / 255)  # OpenCV on the CPU
    as_on_gpu = rgb_to_gray(torch.from_numpy(rgb).permute(2, 0, 1)[None].float()) / 255  # the CUDA path's luma
    np.testing.assert_allclose(as_on_gpu[0, 0].numpy(), expected, atol=1e-6)
    colour = image_to_guide(rgb, gray=False)
    assert colour.shape == (1, 3, 5, 7)
    np.testing.assert_allclose(colour[0].permute(1, 2, 0).numpy(), rgb / 255, atol=1e-6)


@pytest.mark.parametrize("radius, eps", [(1, 1e-4), (3, 1e-3)])
def test_the_opencv_gray_path_gives_the_torch_filters_alpha(radius, eps):
    rng = np.random.default_rng(1)
    image = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (200, 120), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(image, (50, 30), interpolation=cv2.INTER_AREA)
    alpha = cv2.GaussianBlur((rng.random((30, 50)) > 0.5).astype(np.float32), (0, 0), 2) * 1.2 - 0.1
    gray_lr, gray_hr = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (small, image))
    mine = guided_upsample_gray_cpu(alpha, gray_lr, gray_hr, radius, eps)
    torch_path = guided_upsample(torch.from_numpy(alpha)[None, None], image_to_guide(image), radius, eps,
                                 guide_lr=image_to_guide(small))[0, 0].numpy()
    assert mine.shape == (120, 200) and mine.dtype == np.float32 and 0 <= mine.min() and mine.max() <= 1
    np.testing.assert_allclose(mine, torch_path, atol=1e-5)
