"""The Swin-T encoder of P3M-Net (IJCV 2023; VARIANTS.md §5): a pooling conv stem to H/4, then four stages of
shifted-window attention blocks (depths 2/2/6/2, widths 96/192/384/768, heads 3/6/12/24, 7×7 windows) with a
pooling patch-merge at the end of each of the first three, and a final LayerNorm.

Any input size works: each block pads its token grid at the bottom and right to whole windows and masks the
padding out of the attention (the padded strips are regions of their own, as the official mask builds them);
the official code computes such masks only on CUDA and only where a shift-0 block needs padding. Every stage
needs at least 8 tokens a side (P3MNet pads smaller inputs). Module names are the official ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.p3mnet.encoder import EncoderFeatures
from model.p3mnet.transformer import (
    Mlp,
    PooledConvStem,
    PoolingMerge,
    Size,
    attention,
    merge_heads,
    split_heads,
    to_map,
)

WIDTHS = (96, 192, 384, 768)
DEPTHS = (2, 2, 6, 2)
HEADS = (3, 6, 12, 24)
WINDOW = 7
MLP_RATIO = 4
BUILD_SIZE = 512  # the official model is built for 512×512: its stored masks are those of that size
MASKED = -100.0   # the official mask value between regions


def relative_position_index(window: int = WINDOW) -> Tensor:
    """window²×window² index into the (2·window−1)² bias table: (dy + w−1)·(2w−1) + (dx + w−1)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    y, x = ys.flatten(), xs.flatten()
    dy = y[:, None] - y[None, :] + window - 1
    dx = x[:, None] - x[None, :] + window - 1
    return dy * (2 * window - 1) + dx


def _regions(pad: int, shift: int, window: int) -> tuple[slice, ...]:
    """The mask regions along one axis of a padded, rolled grid: the shifted-in strip and the padding are
    regions of their own (the official slicing, VARIANTS.md §5)."""
    if shift:
        if pad:
            outer, inner = max(pad + shift, window), min(pad + shift, window)
            return slice(0, -outer), slice(-outer, -inner), slice(-inner, -shift), slice(-shift, None)
        return slice(0, -window), slice(-window, -shift), slice(-shift, None)
    return (slice(0, -pad), slice(-pad, None)) if pad else (slice(0, None),)


def window_mask(size: Size, shift: int, window: int = WINDOW, device: torch.device | str | None = None
                ) -> Tensor | None:
    """windows×window²×window² additive mask (0 inside a region, −100 across) for an h×w token grid, or None
    where nothing needs masking (no shift, no padding). Built with device ops only (CUDA-graph safe)."""
    h, w = size
    pad_h, pad_w = _pad(h, window), _pad(w, window)
    if not shift and not pad_h and not pad_w:
        return None
    labels = torch.zeros(h + pad_h, w + pad_w, device=device)
    count = 0
    for rows in _regions(pad_h, shift, window):
        for cols in _regions(pad_w, shift, window):
            labels[rows, cols] = count
            count += 1
    windows = _partition(labels[None, :, :, None], window)[..., 0]      # windows × window²
    different = windows[:, None, :] != windows[:, :, None]
    return torch.zeros_like(different, dtype=torch.float32).masked_fill_(different, MASKED)


def _pad(n: int, window: int) -> int:
    return (window - n % window) % window


def _partition(x: Tensor, window: int) -> Tensor:
    """N×H×W×C (H, W multiples of window) → (N·windows)×window²×C, windows and tokens in row-major order."""
    n, h, w, c = x.shape
    x = x.view(n, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _merge(windows: Tensor, n: int, h: int, w: int, window: int) -> Tensor:
    """The inverse of _partition."""
    c = windows.shape[-1]
    x = windows.view(n, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, w, c)


class WindowAttention(nn.Module):
    """Multi-head attention inside each window, with a learned relative-position bias."""

    def __init__(self, dim: int, heads: int, window: int = WINDOW) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window).to(_here()))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, windows: Tensor, n: int, mask: Tensor | None) -> Tensor:
        """(n·nW)×window²×C → the same; `mask` nW×window²×window² or None."""
        t = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(t, t, self.heads).permute(2, 0, 1)                       # heads×t×t
        if mask is not None:
            bias = bias + mask.to(bias.dtype)[:, None]                           # nW×heads×t×t
        q, k, v = split_heads(self.qkv(windows), 3, self.heads)                  # (n·nW)×heads×t×d
        if mask is not None:
            q, k, v = (z.reshape(n, -1, *z.shape[1:]) for z in (q, k, v))       # n×nW×heads×t×d
        y = attention(q, k, v, bias.to(q.dtype))
        return self.proj(merge_heads(y.reshape(-1, *y.shape[-3:])))


class SwinBlock(nn.Module):
    """x + attention over (shifted) windows of norm1(x), then + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, shift: int, stage: int) -> None:
        super().__init__()
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, MLP_RATIO * dim)
        # The official model stores the mask of its build size; it is a fixed function of the architecture,
        # kept for the checkpoint's keys (and checked by `altered_fixed_buffers`); forward builds its own.
        side = BUILD_SIZE // 4 >> stage
        self.register_buffer("attn_mask", window_mask((side, side), shift, device="cpu").to(_here()))

    def forward(self, x: Tensor, size: Size, mask: Tensor | None) -> Tensor:
        n, _, c = x.shape
        h, w = size
        y = self.norm1(x).view(n, h, w, c)
        y = F.pad(y, (0, 0, 0, _pad(w, WINDOW), 0, _pad(h, WINDOW)))     # zeros after the norm, as the official
        hp, wp = y.shape[1:3]
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = _merge(self.attn(_partition(y, WINDOW), n, mask), n, hp, wp, WINDOW)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y[:, :h, :w].reshape(n, h * w, c)
        return x + self.mlp(self.norm2(x))


class SwinStage(nn.Module):
    """Blocks alternating no shift and a half-window shift, then (stages 1-3) a pooling patch-merge."""

    def __init__(self, index: int) -> None:
        super().__init__()
        dim = WIDTHS[index]
        self.blocks = nn.ModuleList(
            SwinBlock(dim, HEADS[index], shift=0 if j % 2 == 0 else WINDOW // 2, stage=index)
            for j in range(DEPTHS[index])
        )
        self.downsample = PoolingMerge(dim, WIDTHS[index + 1]) if index + 1 < len(WIDTHS) else None

    def forward(self, x: Tensor, size: Size) -> tuple[Tensor, Size, list[Tensor], list[Tensor]]:
        masks = {shift: window_mask(size, shift, device=x.device) for shift in {b.shift for b in self.blocks}}
        for block in self.blocks:
            x = block(x, size, masks[block.shift])
        if self.downsample is None:
            return x, size, [], []
        x, size, indices, feature = self.downsample(x, size)
        return x, size, [indices], [feature]


class SwinEncoder(nn.Module):
    """Swin-T with a pooling stem and pooling merges: image → EncoderFeatures for the decoders.

    e0 48×H and e0p 96×H/2 are the stem's features; e1 96×H/4, e2 192×H/8, e3 384×H/16 the layer-normalised
    maps each patch-merge pools; e4 the final LayerNorm's 768×H/32 tokens as a map.
    """

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PooledConvStem(WIDTHS[0], relu_after_proj3=True)
        self.layers = nn.ModuleList(SwinStage(i) for i in range(len(WIDTHS)))
        self.norm = nn.LayerNorm(WIDTHS[-1])

    def forward(self, x: Tensor) -> EncoderFeatures:
        x, size, indices, features = self.patch_embed(x)
        for stage in self.layers:
            x, size, idx, feas = stage(x, size)
            indices += idx
            features += feas
        e4 = to_map(self.norm(x), size).contiguous()
        return EncoderFeatures(*features, e4, tuple(indices))  # type: ignore[arg-type]

    def altered_fixed_buffers(self) -> list[str]:
        """Names of the buffers that differ from the values the architecture defines (a loaded checkpoint's)."""
        index = relative_position_index()
        altered = []
        for i, stage in enumerate(self.layers):
            for j, block in enumerate(stage.blocks):
                name = f"encoder.layers.{i}.blocks.{j}"
                if not torch.equal(block.attn.relative_position_index.cpu(), index):
                    altered.append(f"{name}.attn.relative_position_index")
                side = BUILD_SIZE // 4 >> i
                if not torch.equal(block.attn_mask.cpu(), window_mask((side, side), block.shift, device="cpu")):
                    altered.append(f"{name}.attn_mask")
        return altered


def _here() -> torch.device:
    """The device new tensors go to (follows a `with torch.device(...)` around the construction)."""
    return torch.empty(0).device
