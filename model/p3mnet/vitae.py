"""The ViTAE-S encoder of P3M-Net (IJCV 2023; SPEC §6, VARIANTS.md §4): four stages of ViTAE normal cells at
H/4 … H/32, widths 64/128/256/512, depths 2/2/12/2, the first stage with Performer attention.

In ViTAE's terms each stage is a reduction cell (RC: the stem, or a pooling patch-merge) and normal cells (NC:
attention and a parallel convolution module, PCM, side by side). Module names are the official ones.
"""
from __future__ import annotations

import math

import torch
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
    to_tokens,
)

WIDTHS = (64, 128, 256, 512)
DEPTHS = (2, 2, 12, 2)
HEADS = (1, 2, 4, 8)
PCM_GROUPS = (1, 32, 64, 128)
MLP_RATIO = 4
PERFORMER_FEATURES = 32  # m = head_dim / 2 random features
# The official code draws the Performer's features afresh at each start; ours come from this seed unless a
# checkpoint carries them, so the same weights always give the same matte.
PERFORMER_SEED = 20230


def performer_features(heads: int, m: int, dim: int, seed: int = PERFORMER_SEED) -> Tensor:
    """heads×m×dim random features: orthonormal rows × √m (as the official init), from a fixed seed, on the CPU."""
    g = torch.Generator().manual_seed(seed)
    w = torch.empty(heads, m, dim, device="cpu")
    for h in range(heads):
        nn.init.orthogonal_(w[h], generator=g)
    return w * math.sqrt(m)


class PerformerAttention(nn.Module):
    """Linear-cost softmax-kernel attention (FAVOR+, positive random features) of stage 1, as in the official
    `AttentionPerformer`: kqv split in the order k, q, v; φ(t) = exp(w·t − ‖t‖²/2)/√m; no residual inside.

    `w` is a buffer (saved with our checkpoints); official checkpoints lack it and get `performer_features`.
    """

    def __init__(self, dim: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        self.kqv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # never used by the official forward; kept for its keys
        device = torch.empty(0).device  # follows a `with torch.device(...)` around the construction
        w = performer_features(heads, PERFORMER_FEATURES, dim // heads).to(device)
        self.register_buffer("w", w)

    def _features(self, x: Tensor) -> Tensor:
        x = x.float()  # as the official code: the exponentials in float32 under any precision
        half_sq_norm = (x * x).sum(dim=-1, keepdim=True) / 2
        wx = torch.einsum("bhti,hmi->bhtm", x, self.w.float())
        return torch.exp(wx - half_sq_norm) / math.sqrt(self.w.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        k, q, v = split_heads(self.kqv(x), 3, self.heads)
        kp, qp = self._features(k), self._features(q)
        norm = torch.einsum("bhti,bhi->bht", qp, kp.sum(dim=2)).unsqueeze(-1)
        kv = torch.einsum("bhin,bhim->bhnm", v.float(), kp)
        y = torch.einsum("bhti,bhni->bhtn", qp, kv) / (norm + 1e-8)
        return self.proj(merge_heads(y).to(x.dtype))


class Attention(nn.Module):
    """Global multi-head self-attention (qkv split in the order q, k, v)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = split_heads(self.qkv(x), 3, self.heads)
        return self.proj(merge_heads(attention(q, k, v)))


def _pcm(dim: int, groups: int) -> nn.Sequential:
    """The parallel convolution module: three grouped 3×3 convs (d→4d→d→d), BN after the first two, SiLU."""
    hidden = MLP_RATIO * dim
    return nn.Sequential(
        nn.Conv2d(dim, hidden, 3, padding=1, groups=groups), nn.BatchNorm2d(hidden), nn.SiLU(inplace=True),
        nn.Conv2d(hidden, dim, 3, padding=1, groups=groups), nn.BatchNorm2d(dim), nn.SiLU(inplace=True),
        nn.Conv2d(dim, dim, 3, padding=1, groups=groups), nn.SiLU(inplace=True),
    )


class NormalCell(nn.Module):
    """x + attn(norm1(x)) + PCM(x), then + mlp(norm2(x)); the PCM sees the un-normalised tokens as a map."""

    def __init__(self, dim: int, heads: int, groups: int, performer: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = PerformerAttention(dim, heads) if performer else Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, MLP_RATIO * dim)
        self.PCM = _pcm(dim, groups)

    def forward(self, x: Tensor, size: Size) -> Tensor:
        conv = to_tokens(self.PCM(to_map(x, size).contiguous()))
        x = x + self.attn(self.norm1(x)) + conv
        return x + self.mlp(self.norm2(x))


class Stage(nn.Module):
    """A reduction cell (`RC`: the stem, or a pooling merge) and its normal cells (`NC`)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        dim = WIDTHS[index]
        self.RC = PooledConvStem(dim, relu_after_proj3=False) if index == 0 else PoolingMerge(WIDTHS[index - 1], dim)
        self.NC = nn.ModuleList(
            NormalCell(dim, HEADS[index], PCM_GROUPS[index], performer=index == 0) for _ in range(DEPTHS[index])
        )

    def forward(self, x: Tensor, size: Size | None) -> tuple[Tensor, Size, list[Tensor], list[Tensor]]:
        if isinstance(self.RC, PooledConvStem):
            x, size, indices, features = self.RC(x)
        else:
            x, size, index, feature = self.RC(x, size)
            indices, features = [index], [feature]
        for cell in self.NC:
            x = cell(x, size)
        return x, size, indices, features


class ViTAEEncoder(nn.Module):
    """ViTAE-S (stages4_14) with max-pooling reductions: image → EncoderFeatures for the decoders.

    e0 32×H and e0p 64×H/2 are the stem's features; e1 64×H/4, e2 128×H/8, e3 256×H/16 the layer-normalised
    maps at the start of stages 2-4 (before their pools); e4 the last stage's 512×H/32 tokens as a map.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Stage(i) for i in range(len(WIDTHS)))
        # The ImageNet classifier: never used by P3M-Net, kept so official checkpoints load strictly.
        self.head = nn.Linear(WIDTHS[-1], 1000)

    def forward(self, x: Tensor) -> EncoderFeatures:
        indices: list[Tensor] = []
        features: list[Tensor] = []
        size = None
        for stage in self.layers:
            x, size, idx, feas = stage(x, size)
            indices += idx
            features += feas
        e4 = to_map(x, size).contiguous()
        return EncoderFeatures(*features, e4, tuple(indices))  # type: ignore[arg-type]
