"""Whole-image inference exactly as the official test code does it (SPEC §7): RESIZE and HYBRID strategies.

The official code resizes with scikit-image 0.14's `resize` defaults; `resize_bilinear` reproduces
those numbers with numpy alone, so the product does not depend on scikit-image.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch

from model.p3mnet.network import SIZE_MULTIPLE, P3MNet

MAX_SIDE = 1600  # the official MAX_SIZE_H / MAX_SIZE_W, applied per axis
SMALL_SIDE = 512  # IJCV, Swin-T on single images: a smaller side is upscaled to this, one pass (SPEC §7.4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Strategy = Literal["resize", "hybrid"]


def infer_image(
    net: P3MNet, rgb: np.ndarray, strategy: Strategy = "resize", device: str | torch.device | None = None,
    samples: bool = False,
) -> np.ndarray:
    """Alpha matte (H×W float32 in [0, 1]) of an H×W×3 uint8 RGB image, by the official strategy.

    "resize": one pass at half size, the network's fused alpha upsampled. "hybrid": the trimap from a
    half-size pass, the local alpha from a full-size pass (both capped at 1600 px per side). The input
    goes to `device` (default: the net's); the net is not moved. `samples`: the official code's rule for single
    images (not datasets): Swin-T on an image under 512 px a side runs once, upscaled (SPEC §7.4).
    """
    _check_rgb(rgb)
    if strategy not in ("resize", "hybrid"):
        raise ValueError(f"unknown strategy {strategy!r}: use 'resize' or 'hybrid'")
    h, w = rgb.shape[:2]
    device = next(net.parameters()).device if device is None else torch.device(device)
    if samples and getattr(net, "arch", "r34") == "swin-t" and min(h, w) < SMALL_SIDE:
        scale = max(SMALL_SIDE / h, SMALL_SIDE / w)
        size = tuple(min(MAX_SIDE, _floor32(int(side * scale))) for side in (h, w))
        return resize_bilinear(_run(net, rgb, size, device).fused_alpha, (h, w)).astype(np.float32)
    if strategy == "resize":
        out = _run(net, rgb, network_size(h, w, 0.5), device)
        alpha = resize_bilinear(out.fused_alpha, (h, w))
    else:
        half = network_size(h, w, 0.5)
        full = network_size(h, w, 1.0)
        trimap = resize_bilinear(_run(net, rgb, half, device).trimap, (h, w)) * 255.0
        local = resize_bilinear(_run(net, rgb, full, device).local_alpha, (h, w))
        # Exact == 255 / == 0 as in the official code: pixels blended from mixed classes take the local alpha.
        alpha = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, local))
    return alpha.astype(np.float32)


def network_size(h: int, w: int, ratio: float) -> tuple[int, int]:
    """The official network input size: each side scaled by `ratio`, floored to a multiple of 32, capped."""
    return tuple(min(MAX_SIDE, _floor32(int(side * ratio))) for side in (h, w))  # type: ignore[return-value]


def _floor32(x: int) -> int:
    return x - x % SIZE_MULTIPLE


class _Pass(NamedTuple):
    """One network pass, as numpy arrays at the network size."""

    trimap: np.ndarray  # uint8: 0 background, 128 transition, 255 foreground
    local_alpha: np.ndarray  # float32
    fused_alpha: np.ndarray  # float32


def _run(net: P3MNet, rgb: np.ndarray, size: tuple[int, int], device: torch.device) -> _Pass:
    h, w = rgb.shape[:2]
    if min(size) < SIZE_MULTIPLE:
        raise ValueError(
            f"image {w}×{h} (W×H) is too small: the network input would be {size[1]}×{size[0]}; each side, "
            f"after scaling, must keep at least {SIZE_MULTIPLE} px (use an image of at least 64×64)"
        )
    x = resize_bilinear(rgb, size) * 255.0  # float64 in 0..255, as the official code
    x = torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    x = ((x - mean) / std).unsqueeze(0).to(device, next(net.parameters()).dtype)
    with torch.inference_mode():
        out = net(x)
    cls = out.global_logits[0].argmax(dim=0).cpu().numpy()
    trimap = np.array([0, 128, 255], dtype=np.uint8)[cls]
    return _Pass(trimap, out.local_alpha[0, 0].float().cpu().numpy(), out.fused_alpha[0, 0].float().cpu().numpy())


def _check_rgb(rgb: object) -> None:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected an H×W×3 uint8 numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got dtype {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got shape {rgb.shape}")


def resize_bilinear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`skimage.transform.resize(image, shape)` with the official code's scikit-image 0.14 defaults.

    Semantics (0.14 defaults): unsigned integers scaled to [0, 1] in float64, bilinear sampling at input
    position (i + 0.5) · in/out − 0.5 per axis, neighbours outside the image read as 0 ('constant', cval 0),
    no anti-aliasing, result clipped to the input's range. Arithmetic: that of scikit-image ≥ 0.19 with
    those arguments (scipy.ndimage's zoom, float32 stays float32), which the parity references follow
    bit for bit; 0.14's own Cython kernel differs in the last bit, which matters only where HYBRID
    compares the upsampled trimap with 255 and 0 exactly.
    """
    img = _as_float(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an H×W or H×W×C image, got shape {image.shape}")
    r0, r1, wr0, wr1 = _taps(img.shape[0], int(shape[0]))
    c0, c1, wc0, wc1 = _taps(img.shape[1], int(shape[1]))
    wr0, wr1 = wr0[:, None], wr1[:, None]
    if img.ndim == 3:
        wr0, wr1, wc0, wc1 = (w[..., None] for w in (wr0, wr1, wc0, wc1))
    # One ring of zeros stands for the 'constant' neighbours just outside the image.
    padded = np.pad(img.astype(np.float64, copy=False), ((1, 1), (1, 1)) + ((0, 0),) * (img.ndim - 2))
    # ndimage's order: value × row weight × column weight, summed tap by tap.
    out = padded[np.ix_(r0, c0)] * wr0 * wc0
    out += padded[np.ix_(r0, c1)] * wr0 * wc1
    out += padded[np.ix_(r1, c0)] * wr1 * wc0
    out += padded[np.ix_(r1, c1)] * wr1 * wc1
    out = out.astype(img.dtype, copy=False)

    lo, hi = img.min(), img.max()
    if not lo <= 0 <= hi and out.min() <= 0 <= out.max():
        lo, hi = min(lo, 0), max(hi, 0)  # keep the zeros that came from outside the image
    return np.clip(out, lo, hi, out=out)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For one axis: (padded) indices of the two input samples around each output sample, and their weights."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    start = np.floor(pos)
    w0 = 1.0 - (pos - start)
    w1 = 1.0 - w0  # as ndimage: the weights sum to 1 by construction
    i0 = np.clip(start.astype(np.int64) + 1, 0, n_in + 1)
    i1 = np.clip(start.astype(np.int64) + 2, 0, n_in + 1)
    return i0, i1, w0, w1


def _as_float(image: np.ndarray) -> np.ndarray:
    """skimage's img_as_float: unsigned integers × (1 / max) in float64; float32/64 as they are."""
    if image.dtype.kind == "u":
        return np.multiply(image, 1.0 / np.iinfo(image.dtype).max, dtype=np.float64)
    if image.dtype.kind == "f":
        return image if image.dtype.itemsize >= 4 else image.astype(np.float32)
    raise ValueError(f"cannot resize an image of dtype {image.dtype}: use unsigned integers or floats")
