"""P3M-Net's two decoders (SPEC §3): the semantic decoder (trimap logits, with dBFI) and the matting decoder
(alpha in the transition area, with TFI and sBFI), each five stages deep.

Each stage is a flat nn.Sequential (conv at 0/3/6, BN at 1/4/7, ReLU at 2/5/8, then an optional upsample),
which is exactly the official layout, so checkpoint keys inside a stage need no renaming.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.p3mnet.encoder import EncoderFeatures
from model.p3mnet.integration import DBFI, SBFI, TFI


def conv_bn_relu_stage(*channels: int, upsample: bool = False) -> nn.Sequential:
    """Conv3×3(bias)-BN-ReLU for each consecutive pair of `channels`, then ×2 bilinear if `upsample`."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if upsample:
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear"))
    return nn.Sequential(*layers)


class SemanticFeatures(NamedTuple):
    """What the semantic decoder hands on: its logits and side logits, and the stage outputs TFI reads."""

    logits: Tensor  # N×3×H×W: background, transition, foreground
    side_logits: tuple[Tensor, Tensor, Tensor]  # from dBFI-2, dBFI-1, dBFI-0, all N×3×H×W
    d4: Tensor  # 256 × H/16
    d3: Tensor  # 128 × H/8 (before dBFI-2)
    d2: Tensor  # 64 × H/4 (before dBFI-1)
    d1: Tensor  # 64 × H/2 (before dBFI-0)


class SemanticDecoder(nn.Module):
    """e4 up to full-resolution 3-class logits; dBFI injects e4 context at H/8, H/4 and H/2."""

    def __init__(self) -> None:
        super().__init__()
        self.stage4 = conv_bn_relu_stage(512, 512, 512, 256, upsample=True)
        self.stage3 = conv_bn_relu_stage(256, 256, 256, 128, upsample=True)
        self.dbfi2 = DBFI(128, stride=4)
        self.stage2 = conv_bn_relu_stage(128, 128, 128, 64, upsample=True)
        self.dbfi1 = DBFI(64, stride=8)
        self.stage1 = conv_bn_relu_stage(64, 64, 64, 64, upsample=True)
        self.dbfi0 = DBFI(64, stride=16)
        self.stage0 = nn.Sequential(
            *conv_bn_relu_stage(64, 64, 64),
            nn.Conv2d(64, 3, 3, padding=1),  # logits: no BN, no ReLU
            nn.Upsample(scale_factor=2, mode="bilinear"),
        )

    def forward(self, f: EncoderFeatures) -> SemanticFeatures:
        d4 = self.stage4(f.e4)
        d3 = self.stage3(d4)
        x, side2 = self.dbfi2(d3, f.e4)
        d2 = self.stage2(x)
        x, side1 = self.dbfi1(d2, f.e4)
        d1 = self.stage1(x)
        x, side0 = self.dbfi0(d1, f.e4)
        return SemanticFeatures(self.stage0(x), (side2, side1, side0), d4, d3, d2, d1)


class MattingDecoder(nn.Module):
    """e4 up to a full-resolution alpha by max-unpooling; TFI joins semantic and encoder features at every
    level, sBFI adds stem (e0) detail at H/8, H/4 and H/2."""

    def __init__(self) -> None:
        super().__init__()
        self.stage4 = conv_bn_relu_stage(512, 512, 512, 256)
        self.tfi3 = TFI(256)
        self.stage3 = conv_bn_relu_stage(256, 256, 256, 128)
        self.tfi2 = TFI(128)
        self.sbfi2 = SBFI(128, stride=8)
        self.stage2 = conv_bn_relu_stage(128, 128, 128, 64)
        self.tfi1 = TFI(64)
        self.sbfi1 = SBFI(64, stride=4)
        self.stage1 = conv_bn_relu_stage(64, 64, 64, 64)
        self.tfi0 = TFI(64)
        self.sbfi0 = SBFI(64, stride=2)
        self.stage0 = conv_bn_relu_stage(64, 64, 64)
        self.final = nn.Conv2d(64, 1, 3, padding=1)

    def forward(self, f: EncoderFeatures, semantic: SemanticFeatures) -> Tensor:
        """Return the local alpha (sigmoid), N×1×H×W."""
        id0, id1, id2, id3, id4 = f.pool_indices
        x = _unpool(self.stage4(f.e4), id4)  # H/16
        x = self.tfi3(semantic.d4, x, f.e3)
        x = _unpool(self.stage3(x), id3)  # H/8
        x = self.sbfi2(self.tfi2(semantic.d3, x, f.e2), f.e0)
        x = _unpool(self.stage2(x), id2)  # H/4
        x = self.sbfi1(self.tfi1(semantic.d2, x, f.e1), f.e0)
        x = _unpool(self.stage1(x), id1)  # H/2
        x = self.sbfi0(self.tfi0(semantic.d1, x, f.e0p), f.e0)
        x = _unpool(self.stage0(x), id0)  # H
        return torch.sigmoid(self.final(x))


def _unpool(x: Tensor, indices: Tensor) -> Tensor:
    # Indices come from the encoder's 3×3/2 pools; a 2×2/2 unpool restores exactly twice the size.
    if not x.requires_grad:     # inference; training keeps max_unpool2d's own gradient untouched
        x = _last_window_wins(x, indices)
    return F.max_unpool2d(x, indices, kernel_size=2, stride=2)


def _last_window_wins(x: Tensor, indices: Tensor) -> Tensor:
    """`x` where each window whose max position a later window also picked takes that later window's value.

    Overlapping 3×3/2 windows can pick the same position, so the unpool writes several values there and the
    kernel decides which lands: the last window in raster order on the CPU with contiguous tensors (the
    official result), another with channels_last (up to 0.08 off in alpha on the parity nets), a race on
    CUDA. The windows that can share a position with window (i, j) are its later neighbours (i, j+1),
    (i+1, j-1), (i+1, j), (i+1, j+1); with their values copied in, every write agrees on any layout or device.
    """
    h, w = x.shape[-2:]

    def later(t: Tensor, di: int, dj: int, fill: float) -> Tensor:
        return F.pad(t, (1, 1, 0, 1), value=fill)[..., di:di + h, 1 + dj:1 + dj + w]

    for di, dj in ((0, 1), (1, -1), (1, 0), (1, 1)):        # raster order: the last match wins
        x = torch.where(indices == later(indices, di, dj, -1), later(x, di, dj, 0.0), x)
    return x
