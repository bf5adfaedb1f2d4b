"""P3M-Net's two decoders (SPEC §3): the semantic decoder (trimap logits, with dBFI) and the matting decoder
(alpha in the transition area, with TFI and sBFI), each five stages deep.

One pair of classes serves all three variants; `DecoderWidths` says how wide each level is and which of the
two official layouts it follows (SPEC §3 for R34, §6 and VARIANTS.md §4-5 for ViTAE-S and Swin-T).

Each stage is a flat nn.Sequential (conv at 0/3/6, BN at 1/4/7, ReLU at 2/5/8, then an optional upsample),
which is exactly the official layout, so checkpoint keys inside a stage need no renaming.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.p3mnet.encoder import EncoderFeatures
from model.p3mnet.integration import DBFI, SBFI, TFI


@dataclass(frozen=True)
class DecoderWidths:
    """The widths a variant's decoders work at, from the encoder's features.

    `levels` are the widths of d4, d3, d2, d1 (= the encoder's e3, e2, e1, e0p); `e4` the deepest feature's,
    `e0` the full-resolution one's. `ijcv`: the IJCV layout (ViTAE-S, Swin-T), where a stage narrows in its
    first conv (R34: its last), the last stage narrows to `e0` channels and the semantic logits come from a
    separate classifier after the last upsampling (R34: from the last stage's own final conv).
    """

    e4: int
    levels: tuple[int, int, int, int]
    e0: int
    ijcv: bool

    def stage(self, c_in: int, c_out: int) -> tuple[int, ...]:
        """The four channel counts of a three-conv stage from c_in to c_out."""
        return (c_in, c_out, c_out, c_out) if self.ijcv else (c_in, c_in, c_in, c_out)

    @property
    def head(self) -> int:
        """Width of the last stage of both decoders."""
        return self.e0 if self.ijcv else self.levels[3]


R34_WIDTHS = DecoderWidths(e4=512, levels=(256, 128, 64, 64), e0=64, ijcv=False)


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
    d4: Tensor  # levels[0] × H/16 (R34: 256)
    d3: Tensor  # levels[1] × H/8, before dBFI-2 (R34: 128)
    d2: Tensor  # levels[2] × H/4, before dBFI-1 (R34: 64)
    d1: Tensor  # levels[3] × H/2, before dBFI-0 (R34: 64)


class SemanticDecoder(nn.Module):
    """e4 up to full-resolution 3-class logits; dBFI injects e4 context at H/8, H/4 and H/2."""

    def __init__(self, widths: DecoderWidths = R34_WIDTHS) -> None:
        super().__init__()
        w4, w3, w2, w1 = widths.levels
        self.stage4 = conv_bn_relu_stage(*widths.stage(widths.e4, w4), upsample=True)
        self.stage3 = conv_bn_relu_stage(*widths.stage(w4, w3), upsample=True)
        self.dbfi2 = DBFI(w3, stride=4, e4_channels=widths.e4)
        self.stage2 = conv_bn_relu_stage(*widths.stage(w3, w2), upsample=True)
        self.dbfi1 = DBFI(w2, stride=8, e4_channels=widths.e4)
        self.stage1 = conv_bn_relu_stage(*widths.stage(w2, w1), upsample=True)
        self.dbfi0 = DBFI(w1, stride=16, e4_channels=widths.e4)
        head = widths.head
        # The last conv has no BN and no ReLU: R34's gives the logits, the IJCV one a feature the classifier reads.
        self.stage0 = nn.Sequential(
            *conv_bn_relu_stage(w1, head, head),
            nn.Conv2d(head, head if widths.ijcv else 3, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear"),
        )
        self.final = nn.Conv2d(head, 3, 3, padding=1) if widths.ijcv else None

    def forward(self, f: EncoderFeatures) -> SemanticFeatures:
        d4 = self.stage4(f.e4)
        d3 = self.stage3(d4)
        x, side2 = self.dbfi2(d3, f.e4)
        d2 = self.stage2(x)
        x, side1 = self.dbfi1(d2, f.e4)
        d1 = self.stage1(x)
        x, side0 = self.dbfi0(d1, f.e4)
        logits = self.stage0(x)
        if self.final is not None:
            logits = self.final(logits)
        return SemanticFeatures(logits, (side2, side1, side0), d4, d3, d2, d1)


class MattingDecoder(nn.Module):
    """e4 up to a full-resolution alpha by max-unpooling; TFI joins semantic and encoder features at every
    level, sBFI adds full-resolution (e0) detail at H/8, H/4 and H/2."""

    def __init__(self, widths: DecoderWidths = R34_WIDTHS) -> None:
        super().__init__()
        w4, w3, w2, w1 = widths.levels
        self.overlapping_pools = not widths.ijcv  # R34 pools 3×3/2; the IJCV encoders 2×2/2
        self.stage4 = conv_bn_relu_stage(*widths.stage(widths.e4, w4))
        self.tfi3 = TFI(w4)
        self.stage3 = conv_bn_relu_stage(*widths.stage(w4, w3))
        self.tfi2 = TFI(w3)
        self.sbfi2 = SBFI(w3, stride=8, e0_channels=widths.e0)
        self.stage2 = conv_bn_relu_stage(*widths.stage(w3, w2))
        self.tfi1 = TFI(w2)
        self.sbfi1 = SBFI(w2, stride=4, e0_channels=widths.e0)
        self.stage1 = conv_bn_relu_stage(*widths.stage(w2, w1))
        self.tfi0 = TFI(w1)
        self.sbfi0 = SBFI(w1, stride=2, e0_channels=widths.e0)
        self.stage0 = conv_bn_relu_stage(w1, widths.head, widths.head)
        self.final = nn.Conv2d(widths.head, 1, 3, padding=1)

    def forward(self, f: EncoderFeatures, semantic: SemanticFeatures) -> Tensor:
        """Return the local alpha (sigmoid), N×1×H×W."""
        id0, id1, id2, id3, id4 = f.pool_indices
        unpool = _unpool if self.overlapping_pools else _unpool_disjoint
        x = unpool(self.stage4(f.e4), id4)  # H/16
        x = self.tfi3(semantic.d4, x, f.e3)
        x = unpool(self.stage3(x), id3)  # H/8
        x = self.sbfi2(self.tfi2(semantic.d3, x, f.e2), f.e0)
        x = unpool(self.stage2(x), id2)  # H/4
        x = self.sbfi1(self.tfi1(semantic.d2, x, f.e1), f.e0)
        x = unpool(self.stage1(x), id1)  # H/2
        x = self.sbfi0(self.tfi0(semantic.d1, x, f.e0p), f.e0)
        x = unpool(self.stage0(x), id0)  # H
        return torch.sigmoid(self.final(x))


def _unpool_disjoint(x: Tensor, indices: Tensor) -> Tensor:
    # 2×2/2 pool windows never share a position: each output place gets at most one value.
    return F.max_unpool2d(x, indices, kernel_size=2, stride=2)


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
