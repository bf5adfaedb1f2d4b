"""Alpha upsampling: bilinear, and the fast guided filter (He & Sun 2015) in torch, same code on CPU and CUDA
(the CPU pipeline's default, the gray-guide filter in OpenCV, is its twin in guided_filter.py).

The fast guided filter fits the local linear model alpha ≈ a·I + b in the low-resolution domain (where
the matte was computed), upsamples only the coefficients a and b, and applies them to the full-resolution
guide: the matte's edges snap to the image's edges at the cost of a few passes over the full-res frame.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from stream.stages.guided_filter import GUIDED_EPS, GUIDED_RADIUS, LUMA, UPSAMPLERS


def image_to_guide(image: np.ndarray, gray: bool = True, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 RGB → 1×1×H×W gray (BT.601) or 1×3×H×W RGB guide, float32 in [0, 1], on `device`."""
    device = torch.device(device)
    if gray and device.type == "cpu":
        # OpenCV's fixed-point conversion is faster than torch's here; on a GPU, upload the bytes.
        return torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))[None, None].float().div_(255.0)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    return (rgb_to_gray(x) if gray else x).div_(255.0).contiguous()


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → N×1×H×W BT.601 luma, in the input's units."""
    return (x * torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)


def upsample_alpha(alpha_lr: torch.Tensor, size: tuple[int, int], upsample: str,
                   guides: Callable[[], tuple[torch.Tensor, torch.Tensor]], radius: int = GUIDED_RADIUS,
                   eps: float = GUIDED_EPS) -> torch.Tensor:
    """N×1×h×w alpha → N×1×H×W (`size`) by `upsample` (one of UPSAMPLERS): `bilinear`, or `guided` by
    `guides()`, the guide at H×W and at h×w (made only then: bilinear needs none)."""
    if upsample not in UPSAMPLERS:
        raise ValueError(f"unknown upsample {upsample!r}: use one of {', '.join(UPSAMPLERS)}")
    if upsample == "bilinear":
        return bilinear_upsample(alpha_lr, size)
    guide_hr, guide_lr = guides()
    return guided_upsample(alpha_lr, guide_hr, radius, eps, guide_lr=guide_lr)


def bilinear_upsample(alpha_lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N×1×h×w → N×1×H×W (half-pixel centres, like cv2.INTER_LINEAR), clipped to [0, 1]."""
    return F.interpolate(alpha_lr, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)


def guided_upsample(alpha_lr: torch.Tensor, guide_hr: torch.Tensor, radius: int = GUIDED_RADIUS,
                    eps: float = GUIDED_EPS, guide_lr: torch.Tensor | None = None) -> torch.Tensor:
    """Upsample N×1×h×w `alpha_lr` to the size of the N×C×H×W guide (C = 1 gray or 3 RGB, values in [0, 1]).

    `radius` is in low-res pixels, `eps` the regulariser (larger: smoother, closer to bilinear). Pass
    `guide_lr` (the guide at h×w, e.g. the image the model saw) to skip downsampling the full-res guide.
    """
    channels = guide_hr.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"guide must have 1 or 3 channels, got {channels}")
    if guide_lr is None:
        guide_lr = F.interpolate(guide_hr, size=alpha_lr.shape[-2:], mode="area")
    coefficients = _coefficients_gray if channels == 1 else _coefficients_rgb
    a, b = coefficients(alpha_lr, guide_lr, radius, eps)
    ab = F.interpolate(torch.cat([a, b], 1), size=guide_hr.shape[-2:], mode="bilinear", align_corners=False)
    a, b = ab[:, :channels], ab[:, channels:]
    out = torch.addcmul(b, a, guide_hr) if channels == 1 else (a * guide_hr).sum(1, keepdim=True).add_(b)
    return out.clamp_(0.0, 1.0)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)² window around each pixel of N×C×H×W `x`, the window clipped at the borders."""
    return _box_mean_1d(_box_mean_1d(x, radius, -1), radius, -2)


def _box_mean_1d(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    # A sum of 2r+1 shifted views of the zero-padded input: for the small radii used here this beat
    # cumulative sums, avg_pool2d and depthwise conv on CPU, and needs no cancellation-prone running sums.
    n = x.shape[dim]
    padded = F.pad(x, (r, r) if dim == -1 else (0, 0, r, r))
    total = padded.narrow(dim, 0, n).clone()
    for shift in range(1, 2 * r + 1):
        total += padded.narrow(dim, shift, n)
    idx = torch.arange(n, device=x.device)
    count = ((idx + r + 1).clamp_(max=n) - (idx - r).clamp_(min=0)).to(x.dtype)
    return total.div_(count.view(-1, 1) if dim == -2 else count)


def _coefficients_gray(p: torch.Tensor, g: torch.Tensor, r: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-averaged a, b of the gray-guide filter (He et al., Alg. 1), at low resolution."""
    m = box_mean(torch.cat([g, p, g * p, g * g], 1), r)
    mean_g, mean_p, corr_gp, corr_gg = m[:, 0:1], m[:, 1:2], m[:, 2:3], m[:, 3:4]
    a = (corr_gp - mean_g * mean_p) / (corr_gg - mean_g * mean_g + eps)
    b = mean_p - a * mean_g
    ab = box_mean(torch.cat([a, b], 1), r)
    return ab[:, :1], ab[:, 1:]


def _coefficients_rgb(p: torch.Tensor, g: torch.Tensor, r: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-averaged a (N×3) and b of the colour-guide filter (He et al., eq. 14), at low resolution."""
    rr, gg, bb = g[:, 0:1], g[:, 1:2], g[:, 2:3]
    m = box_mean(torch.cat([g, p, g * p, rr * rr, rr * gg, rr * bb, gg * gg, gg * bb, bb * bb], 1), r)
    mean_i, mean_p, corr_ip = m[:, 0:3], m[:, 3:4], m[:, 4:7]
    cov_ip = corr_ip - mean_i * mean_p
    mi = [mean_i[:, k:k + 1] for k in range(3)]
    # Σ + eps·I, symmetric: entries rr, rg, rb, gg, gb, bb.
    s_rr = m[:, 7:8] - mi[0] * mi[0] + eps
    s_rg = m[:, 8:9] - mi[0] * mi[1]
    s_rb = m[:, 9:10] - mi[0] * mi[2]
    s_gg = m[:, 10:11] - mi[1] * mi[1] + eps
    s_gb = m[:, 11:12] - mi[1] * mi[2]
    s_bb = m[:, 12:13] - mi[2] * mi[2] + eps
    # Closed-form inverse via the adjugate (per pixel 3×3, cheaper than batched linalg on CPU).
    i_rr = s_gg * s_bb - s_gb * s_gb
    i_rg = s_gb * s_rb - s_rg * s_bb
    i_rb = s_rg * s_gb - s_gg * s_rb
    i_gg = s_rr * s_bb - s_rb * s_rb
    i_gb = s_rb * s_rg - s_rr * s_gb
    i_bb = s_rr * s_gg - s_rg * s_rg
    det = s_rr * i_rr + s_rg * i_rg + s_rb * i_rb
    c_r, c_g, c_b = cov_ip[:, 0:1], cov_ip[:, 1:2], cov_ip[:, 2:3]
    a = torch.cat([c_r * i_rr + c_g * i_rg + c_b * i_rb,
                   c_r * i_rg + c_g * i_gg + c_b * i_gb,
                   c_r * i_rb + c_g * i_gb + c_b * i_bb], 1) / det
    b = mean_p - (a * mean_i).sum(1, keepdim=True)
    ab = box_mean(torch.cat([a, b], 1), r)
    return ab[:, :3], ab[:, 3:]
