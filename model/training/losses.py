"""P3M-Net's training losses (SPEC §9), with the normalisations of the official MM `core/evaluate.py`.

total = global/6 + 2·local + 3·fusion_alpha + fusion_comp, where
- global: cross-entropy on the trimap classes, CE(side2) + CE(side1) + CE(side0) + 3·CE(final);
- local: sqrt-L1 + Laplacian loss of the local alpha, both restricted to the unknown region;
- fusion_alpha: the same on the fused alpha over the whole image;
- fusion_comp: composition loss of the fused alpha.

Composition loss, our reading: the official code composites α̂·fg + (1 − α̂)·bg with fg and bg in 0..255
and compares it, / 255, with the ImageNet-normalised network input: two different units, so the term
mostly pulls α̂ towards the darker of fg and bg. We keep its form (sqrt-L1 summed over the colours,
divided by N·H·W) and put all three in the same units, RGB in [0, 1]: the image is the network input
de-normalised; fg and bg come from the data set or are estimated (`model.data.estimate_fg_bg`).

Tensors are N×1×H×W (alphas, trimap classes 0/1/2) or N×3×H×W (colours, logits). Every loss is computed
in float32, also under autocast: the 1e-12 inside the square roots underflows in float16.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from model.p3mnet.network import P3MOutput
from model.training.data import UNKNOWN

EPS = 1e-12  # inside sqrt(d² + EPS): a differentiable |d|
LAPLACIAN_LEVELS = 5


class LossTerms(NamedTuple):
    """The total and its four parts (the numbers the official training log prints)."""

    total: Tensor
    global_: Tensor
    local: Tensor
    fusion_alpha: Tensor
    fusion_comp: Tensor


def semantic_ce(logits: Tensor, trimap: Tensor) -> Tensor:
    """Cross-entropy of N×3×H×W logits against N×1×H×W trimap classes, averaged over all pixels."""
    return F.cross_entropy(logits.float(), trimap[:, 0].long())


def global_loss(out: P3MOutput, trimap: Tensor) -> Tensor:
    """CE(side2) + CE(side1) + CE(side0) + 3·CE(final): deep supervision of the semantic decoder."""
    sides = sum(semantic_ce(side, trimap) for side in (out.side2_logits, out.side1_logits, out.side0_logits))
    return sides + 3 * semantic_ce(out.global_logits, trimap)


def sqrt_l1(pred: Tensor, alpha: Tensor, weight: Tensor | None = None) -> Tensor:
    """Σ sqrt((w·(pred − alpha))² + 1e-12) / (Σw + 1) with a 0/1 region `weight`; the plain mean without.

    As the official code, the masked-out pixels still add sqrt(1e-12) = 1e-6 each to the sum.
    """
    diff = pred.float() - alpha.float()
    if weight is None:
        return torch.sqrt(diff**2 + EPS).mean()
    weight = weight.float()
    return torch.sqrt((diff * weight) ** 2 + EPS).sum() / (weight.sum() + 1.0)


def gauss_kernel(size: int = 5, sigma: float = 1.0) -> Tensor:
    """The official 5×5 smoothing kernel (from M. Forte's Laplacian-loss gist), 1×1×size×size.

    Not a 2-D Gaussian: k[i, j] ∝ g(i) + g(j) with g(x) = exp(−(x − c)²/(2σ²))², normalised to sum 1.
    Kept as is, since it defines the loss the released model was trained with.
    """
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2)) ** 2
    kernel = g[:, None] + g[None, :]
    return (kernel / kernel.sum()).float()[None, None]


def laplacian_pyramid(x: Tensor, levels: int = LAPLACIAN_LEVELS) -> list[Tensor]:
    """`levels` band-pass images (x − smooth(x), then halve the smoothed image) plus the last low-pass one."""
    kernel = gauss_kernel().to(x.device)
    pad = kernel.shape[-1] // 2
    bands = []
    for _ in range(levels):
        smooth = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), kernel)
        bands.append(x - smooth)
        x = F.avg_pool2d(smooth, 2)
    return bands + [x]


def laplacian_loss(pred: Tensor, alpha: Tensor, weight: Tensor | None = None) -> Tensor:
    """Σ over the pyramid's 6 images of mean |L(pred) − L(alpha)|; with a region `weight`, both mattes
    are multiplied by it first (the mean still runs over every pixel, as the official code)."""
    pred, alpha = pred.float(), alpha.float()
    if weight is not None:
        pred, alpha = pred * weight, alpha * weight
    return sum(F.l1_loss(p, a) for p, a in zip(laplacian_pyramid(pred), laplacian_pyramid(alpha)))


def composition_loss(alpha_pred: Tensor, image: Tensor, fg: Tensor, bg: Tensor) -> Tensor:
    """Σ sqrt((α̂·fg + (1 − α̂)·bg − image)² + 1e-12) / (N·H·W): summed over the 3 colours, divided by
    the pixel count (the official normaliser). image, fg and bg must be in the same units, [0, 1]."""
    alpha_pred = alpha_pred.float()
    comp = alpha_pred * fg.float() + (1.0 - alpha_pred) * bg.float()
    return torch.sqrt((comp - image.float()) ** 2 + EPS).sum() / alpha_pred.numel()


def local_loss(local_alpha: Tensor, alpha: Tensor, trimap: Tensor) -> Tensor:
    """sqrt-L1 + Laplacian loss of the matting decoder's alpha on the unknown region."""
    unknown = (trimap == UNKNOWN).float()
    return sqrt_l1(local_alpha, alpha, unknown) + laplacian_loss(local_alpha, alpha, unknown)


def fusion_alpha_loss(fused_alpha: Tensor, alpha: Tensor) -> Tensor:
    """sqrt-L1 + Laplacian loss of the fused alpha on the whole image."""
    return sqrt_l1(fused_alpha, alpha) + laplacian_loss(fused_alpha, alpha)


def p3m_loss(out: P3MOutput, alpha: Tensor, trimap: Tensor, image01: Tensor, fg: Tensor, bg: Tensor) -> LossTerms:
    """The official total: global/6 + 2·local + 3·fusion_alpha + fusion_comp (image01: RGB in [0, 1])."""
    g = global_loss(out, trimap)
    loc = local_loss(out.local_alpha, alpha, trimap)
    fus = fusion_alpha_loss(out.fused_alpha, alpha)
    comp = composition_loss(out.fused_alpha, image01, fg, bg)
    return LossTerms(g / 6 + 2 * loc + 3 * fus + comp, g, loc, fus, comp)
