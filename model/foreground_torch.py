"""Foreground colours where the matte is partial, on a device (torch): model/foreground.py's method for
batches already there (the CUDA cut-out composites without leaving the GPU).

The solver is the same multi-level estimation (Germer et al. 2020) with each level's sweeps done for every
pixel at once (Jacobi) instead of pixel by pixel as pymatting does (Gauss-Seidel): what a GPU can run. On the
CPU pymatting's compiled loops are the faster of the two (bench/RESULTS.md), so model/foreground.py uses them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model.foreground import WORK_SIZE, fit_to_pixels


def estimate_fb_ml(image: torch.Tensor, alpha: torch.Tensor, *, regularization: float = 1e-5,
                   gradient_weight: float = 1.0, small_size: int = 32, small_iterations: int = 10,
                   big_iterations: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background (N×3×h×w in [0, 1]) of `image` (N×3×h×w float in [0, 1]) under `alpha`
    (N×1×h×w), solved from 1×1 up to full size; the parameters are pymatting's."""
    channels, (height, width) = image.shape[1], image.shape[2:]
    levels = max(1, math.ceil(math.log2(max(height, width))))
    fb = image.new_zeros((image.shape[0], 2 * channels, 1, 1))       # F and B stacked: one pass updates both
    for level in range(levels + 1):
        size = (round(height ** (level / levels)), round(width ** (level / levels)))
        colour = F.interpolate(image, size=size, mode="nearest")
        a = F.interpolate(alpha, size=size, mode="nearest")
        fb = F.interpolate(fb, size=size, mode="nearest")
        padded = F.pad(a, (1, 1, 1, 1), mode="replicate")
        # A neighbour pulls a pixel's F and B towards its own, less across an alpha edge.
        weights = [regularization + gradient_weight * (a - padded[..., y:y + size[0], x:x + size[1]]).abs()
                   for y, x in _NEIGHBOURS]
        total = sum(weights)
        b = 1 - a
        aa, bb, ab = a * a + total, b * b + total, a * b
        inverse = 1 / (aa * bb - ab * ab)
        data = torch.cat([a * colour, b * colour], dim=1)
        sweeps = small_iterations if size[0] * size[1] <= small_size * small_size else big_iterations
        for _ in range(sweeps):
            padded_fb = F.pad(fb, (1, 1, 1, 1), mode="replicate")
            rhs = data + sum(w * padded_fb[..., y:y + size[0], x:x + size[1]]
                             for w, (y, x) in zip(weights, _NEIGHBOURS))
            rf, rb = rhs[:, :channels], rhs[:, channels:]
            fb = torch.cat([inverse * (bb * rf - ab * rb), inverse * (aa * rb - ab * rf)], dim=1).clamp_(0, 1)
    return fb[:, :channels], fb[:, channels:]


_NEIGHBOURS = ((1, 0), (1, 2), (0, 1), (2, 1))        # left, right, up, down, as offsets into the padded field


def foreground_tensor(images: torch.Tensor, alphas: torch.Tensor, work_size: int = WORK_SIZE) -> torch.Tensor:
    """The foreground colours of a batch: N×H×W×3 uint8 `images` and N×H×W float `alphas` → N×H×W×3 float in
    [0, 1], the image's own colours where the 8-bit alpha is 0 or 255 and the fitted F between (as
    model/foreground.py's `estimate_band`)."""
    height, width = alphas.shape[1:]
    colour = images.permute(0, 3, 1, 2).float().div_(255)
    alpha = alphas.unsqueeze(1).float()
    scale = min(1.0, work_size / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    fg, bg = estimate_fb_ml(_shrink(colour, size), _shrink(alpha, size).clamp_(0, 1))
    fg, bg = (F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False) for x in (fg, bg))
    fitted, _ = fit_to_pixels(colour, alpha, fg, bg)
    alpha8 = alpha.mul(255).round_()
    band = (alpha8 > 0) & (alpha8 < 255)
    return torch.where(band, fitted, colour).permute(0, 2, 3, 1)


def _shrink(picture: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """model/foreground.py's `_shrink` on N×C×H×W: bilinear to twice `size`, then area."""
    if size[0] * 2 < picture.shape[2] and size[1] * 2 < picture.shape[3]:
        picture = F.interpolate(picture, size=(size[0] * 2, size[1] * 2), mode="bilinear", align_corners=False)
    return F.interpolate(picture, size=size, mode="area")
