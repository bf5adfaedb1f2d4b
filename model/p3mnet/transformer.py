"""What the two transformer encoders of P3M-Net (ViTAE-S and Swin-T, IJCV 2023) share: a convolutional stem
that max-pools twice, a patch-merging step that max-pools, multi-head attention and the MLP.

Both encoders pool with 2×2/2 max-pools and keep the indices, so the matting decoder can unpool exactly as
it does for R34 (VARIANTS.md §4-5). Tokens are N×(h·w)×C in row-major order; `to_map`/`to_tokens` convert.
Sub-module names are the official ones (proj1, norm, linear, qkv, fc1, ...), so checkpoint keys map as they are.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

Size = tuple[int, int]  # (h, w) of a token grid


def to_map(tokens: Tensor, size: Size) -> Tensor:
    """N×(h·w)×C tokens → N×C×h×w map."""
    n, _, c = tokens.shape
    return tokens.reshape(n, size[0], size[1], c).permute(0, 3, 1, 2)


def to_tokens(x: Tensor) -> Tensor:
    """N×C×h×w map → N×(h·w)×C tokens."""
    return x.flatten(2).transpose(1, 2)


def pool(x: Tensor) -> tuple[Tensor, Tensor]:
    """2×2/2 max-pool with indices (ties: the first maximum in row-major order, as PyTorch's kernel)."""
    return F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)


class Mlp(nn.Module):
    """Linear C→hidden, exact (erf) GELU, Linear hidden→C."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PooledConvStem(nn.Module):
    """Three 3×3 convs with a 2×2 max-pool after each of the first two: image → tokens at H/4.

    proj1 (→ width/2) + ReLU gives the full-resolution feature, proj2 (→ width) + ReLU the H/2 one; proj3
    is followed by a ReLU in Swin-T only (VARIANTS.md §5), then the tokens are layer-normalised (eps 1e-5).
    """

    def __init__(self, width: int, relu_after_proj3: bool) -> None:
        super().__init__()
        self.proj1 = nn.Conv2d(3, width // 2, 3, padding=1)
        self.proj2 = nn.Conv2d(width // 2, width, 3, padding=1)
        self.proj3 = nn.Conv2d(width, width, 3, padding=1)
        self.relu_after_proj3 = relu_after_proj3
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor) -> tuple[Tensor, Size, list[Tensor], list[Tensor]]:
        """Return (tokens, their grid size, [the two pool indices], [the H and H/2 features])."""
        f0 = F.relu(self.proj1(x))
        x, id0 = pool(f0)
        f1 = F.relu(self.proj2(x))
        x, id1 = pool(f1)
        x = self.proj3(x)
        if self.relu_after_proj3:
            x = F.relu(x)
        size = (x.shape[-2], x.shape[-1])
        return self.norm(to_tokens(x)), size, [id0, id1], [f0, f1]


class PoolingMerge(nn.Module):
    """Patch merging by max-pooling: LayerNorm (eps 1e-5), which is also the feature the decoder reads at this
    level, then a 2×2/2 max-pool with indices and a Linear C_in→C_out without bias."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.linear = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, tokens: Tensor, size: Size) -> tuple[Tensor, Size, Tensor, Tensor]:
        """Return (tokens at half the size, that size, the pool indices, the normalised map before the pool)."""
        feature = to_map(self.norm(tokens), size).contiguous()
        x, indices = pool(feature)
        return self.linear(to_tokens(x)), (x.shape[-2], x.shape[-1]), indices, feature


def split_heads(x: Tensor, parts: int, heads: int) -> list[Tensor]:
    """N×T×(parts·C) from one projection → `parts` tensors of N×heads×T×(C/heads)."""
    n, t, c = x.shape
    return list(x.reshape(n, t, parts, heads, c // (parts * heads)).permute(2, 0, 3, 1, 4).unbind(0))


def merge_heads(x: Tensor) -> Tensor:
    """N×heads×T×d → N×T×(heads·d)."""
    n, h, t, d = x.shape
    return x.transpose(1, 2).reshape(n, t, h * d)


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """softmax(q·kᵀ/√d + bias)·v; PyTorch's fused kernel, which never holds the T×T matrix where it can avoid it."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
