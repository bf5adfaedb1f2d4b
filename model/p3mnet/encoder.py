"""The P3M-Net encoder: ResNet-34-MP, a ResNet-34 that downsamples only with five max-pools (SPEC §1)."""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn


class EncoderFeatures(NamedTuple):
    """Encoder outputs for an N×3×H×W input, plus the max-pool indices the matting decoder unpools with.

    Every variant's encoder gives these six maps (widths here for R34; ViTAE-S and Swin-T in their modules)."""

    e0: Tensor  # stem, 64 × H
    e0p: Tensor  # stem after the first pool, 64 × H/2
    e1: Tensor  # layer1, 64 × H/4
    e2: Tensor  # layer2, 128 × H/8
    e3: Tensor  # layer3, 256 × H/16
    e4: Tensor  # layer4, 512 × H/32
    pool_indices: tuple[Tensor, Tensor, Tensor, Tensor, Tensor]  # id0..id4: the pools to H/2, H/4 ... H/32


class BasicBlock(nn.Module):
    """torchvision's BasicBlock with stride 1; a 1×1 conv + BN shortcut when the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(in_channels, out_channels), *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1))
    )


class ResNet34MP(nn.Module):
    """Stride-1 7×7 stem, layers [3, 4, 6, 3] at stride 1, and a 3×3/2 max-pool (with indices) before each."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=1, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        # Parameter-free, so one module serves all five pools (maxpool1..5 in the official code).
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
        self.layer1 = _stage(64, 64, 3)
        self.layer2 = _stage(64, 128, 4)
        self.layer3 = _stage(128, 256, 6)
        self.layer4 = _stage(256, 512, 3)
        # The ImageNet classifier: never used by P3M-Net, kept so official checkpoints round-trip exactly.
        self.fc = nn.Linear(512, 1000)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> EncoderFeatures:
        e0 = self.relu(self.bn1(self.conv1(x)))
        e0p, id0 = self.pool(e0)
        e1p, id1 = self.pool(e0p)
        e1 = self.layer1(e1p)
        e2p, id2 = self.pool(e1)
        e2 = self.layer2(e2p)
        e3p, id3 = self.pool(e2)
        e3 = self.layer3(e3p)
        e4p, id4 = self.pool(e3)
        e4 = self.layer4(e4p)
        return EncoderFeatures(e0, e0p, e1, e2, e3, e4, (id0, id1, id2, id3, id4))
