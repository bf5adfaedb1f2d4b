"""Each training loss against values computed by hand or by independent plain-numpy code."""
import math

import numpy as np
import pytest
import torch

from model.p3mnet.network import P3MOutput
from model.training.losses import (
    composition_loss,
    fusion_alpha_loss,
    gauss_kernel,
    global_loss,
    laplacian_loss,
    local_loss,
    p3m_loss,
    semantic_ce,
    sqrt_l1,
)


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


def test_semantic_ce_by_hand():
    # 1×3×1×2 logits; pixel 0 is background (class 0), pixel 1 foreground (class 2).
    logits = t([[[[2.0, 0.0]], [[0.0, 1.0]], [[0.0, 3.0]]]])
    trimap = torch.tensor([[[[0, 2]]]])
    ce0 = -math.log(math.e**2 / (math.e**2 + 2))
    ce1 = -math.log(math.e**3 / (1 + math.e + math.e**3))
    assert semantic_ce(logits, trimap).item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)


def test_global_loss_weights_the_final_logits_three_times():
    trimap = torch.tensor([[[[0, 1]]]])
    zero = torch.zeros(1, 3, 1, 2)  # CE of uniform logits: log 3
    sure = t([[[[9.0, -9.0]], [[-9.0, 9.0]], [[-9.0, -9.0]]]])  # ~0 CE
    other = torch.zeros(1, 1, 1, 2)
    out = P3MOutput(zero, other, other, sure, zero, sure)  # final, local, fused, side2, side1, side0
    assert global_loss(out, trimap).item() == pytest.approx(4 * math.log(3), rel=1e-4)


def test_sqrt_l1_on_the_unknown_region_divides_by_its_size_plus_one():
    pred = t([[[[0.2, 0.5], [0.9, 0.0]]]])
    alpha = t([[[[0.0, 1.0], [1.0, 0.0]]]])
    weight = t([[[[0.0, 1.0], [1.0, 0.0]]]])
    # |0.5| + |0.1| inside; each of the 2 masked pixels still adds sqrt(1e-12) = 1e-6; / (2 + 1).
    assert sqrt_l1(pred, alpha, weight).item() == pytest.approx((0.6 + 2e-6) / 3, rel=1e-6)
    # Whole image: the mean of |d| over 4 pixels (the exact pixel adds 1e-6).
    assert sqrt_l1(pred, alpha).item() == pytest.approx((0.2 + 0.5 + 0.1 + 1e-6) / 4, rel=1e-6)


def test_gauss_kernel_is_the_official_sum_of_1d_gaussians():
    k = gauss_kernel()[0, 0].double().numpy()
    g = np.array([math.exp(-((x - 2) ** 2) / 2) ** 2 for x in range(5)])
    expected = np.array([[g[i] + g[j] for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(k, expected / expected.sum(), rtol=1e-6)
    assert k.sum() == pytest.approx(1.0)


def _np_laplacian_loss(pred: np.ndarray, alpha: np.ndarray) -> float:
    """Independent numpy pyramid: 5×5 correlation with edge padding, 2×2 mean pooling, 5 bands + rest."""
    g = np.exp(-((np.arange(5) - 2.0) ** 2))  # exp(-x²/2)² with σ = 1
    kernel = g[:, None] + g[None, :]
    kernel /= kernel.sum()

    def pyramid(x):
        out = []
        for _ in range(5):
            p = np.pad(x, 2, mode="edge")
            smooth = sum(kernel[i, j] * p[i: i + x.shape[0], j: j + x.shape[1]] for i in range(5) for j in range(5))
            out.append(x - smooth)
            x = smooth.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
        return out + [x]

    return sum(np.abs(a - b).mean() for a, b in zip(pyramid(pred), pyramid(alpha)))


def test_laplacian_loss_of_constant_mattes_is_their_difference():
    # Constant images have zero band-pass levels; only the low-pass rest differs, by |0.7 - 0.2|.
    pred, alpha = torch.full((1, 1, 32, 32), 0.7), torch.full((1, 1, 32, 32), 0.2)
    assert laplacian_loss(pred, alpha).item() == pytest.approx(0.5, abs=1e-6)


def test_laplacian_loss_matches_numpy_with_and_without_a_region():
    rng = np.random.default_rng(0)
    pred, alpha = rng.random((32, 64)), (rng.random((32, 64)) > 0.5).astype(np.float64)
    weight = np.zeros((32, 64))
    weight[8:24, 10:50] = 1
    as_t = lambda x: torch.from_numpy(x).float()[None, None]  # noqa: E731
    assert laplacian_loss(as_t(pred), as_t(alpha)).item() == pytest.approx(_np_laplacian_loss(pred, alpha), rel=1e-5)
    assert laplacian_loss(as_t(pred), as_t(alpha), as_t(weight)).item() == pytest.approx(
        _np_laplacian_loss(pred * weight, alpha * weight), rel=1e-5)


def test_composition_loss_by_hand():
    fg = t([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    bg = t([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    half = torch.full((1, 1, 1, 1), 0.5)
    exact = t([0.5, 0.0, 0.5]).view(1, 3, 1, 1)
    assert composition_loss(half, exact, fg, bg).item() == pytest.approx(3e-6, rel=1e-3)  # 3 × sqrt(1e-12)
    image = t([0.2, 0.1, 0.5]).view(1, 3, 1, 1)
    # |0.5-0.2| + |0-0.1| + |0.5-0.5| over the colours, / 1 pixel
    assert composition_loss(half, image, fg, bg).item() == pytest.approx(0.4 + 1e-6, rel=1e-6)
    two = torch.cat([image, exact], dim=3), torch.cat([fg, fg], dim=3), torch.cat([bg, bg], dim=3)
    alpha2 = torch.full((1, 1, 1, 2), 0.5)
    assert composition_loss(alpha2, *two).item() == pytest.approx((0.4 + 4e-6) / 2, rel=1e-6)  # / pixel count


def test_total_is_the_official_weighted_sum():
    torch.manual_seed(0)
    n, h, w = 2, 32, 32
    logits = [torch.randn(n, 3, h, w) for _ in range(4)]
    local = torch.rand(n, 1, h, w)
    fused = torch.rand(n, 1, h, w)
    out = P3MOutput(logits[0], local, fused, *logits[1:])
    alpha = torch.rand(n, 1, h, w)
    trimap = torch.randint(0, 3, (n, 1, h, w))
    image, fg, bg = torch.rand(n, 3, h, w), torch.rand(n, 3, h, w), torch.rand(n, 3, h, w)
    terms = p3m_loss(out, alpha, trimap, image, fg, bg)

    unknown = (trimap == 1).float()
    assert terms.local.item() == pytest.approx(
        (sqrt_l1(local, alpha, unknown) + laplacian_loss(local, alpha, unknown)).item(), rel=1e-6)
    assert terms.local.item() == pytest.approx(local_loss(local, alpha, trimap).item(), rel=1e-6)
    assert terms.fusion_alpha.item() == pytest.approx(
        (sqrt_l1(fused, alpha) + laplacian_loss(fused, alpha)).item(), rel=1e-6)
    assert terms.fusion_alpha.item() == pytest.approx(fusion_alpha_loss(fused, alpha).item(), rel=1e-6)
    assert terms.fusion_comp.item() == pytest.approx(composition_loss(fused, image, fg, bg).item(), rel=1e-6)
    expected = terms.global_ / 6 + 2 * terms.local + 3 * terms.fusion_alpha + terms.fusion_comp
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_losses_are_float32_under_half_inputs():
    pred = torch.full((1, 1, 32, 32), 0.5, dtype=torch.float16, requires_grad=True)
    alpha = torch.full((1, 1, 32, 32), 0.5)
    loss = sqrt_l1(pred, alpha) + laplacian_loss(pred, alpha)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(pred.grad).all()
