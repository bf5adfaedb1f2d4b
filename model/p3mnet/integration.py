"""P3M-Net's integration modules (SPEC §2): TFI joins the three streams, sBFI and dBFI join a decoder with the encoder.

Sub-module names (transform, conv1, bn1, ...) are the official ones, so checkpoint keys map by prefix only.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


class TFI(nn.Module):
    """Tripartite-Feature Integration: one shared 1×1 reduction of the semantic, matting and encoder features."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.transform = _conv1x1(planes, planes // 2)
        self.conv1 = _conv3x3(3 * planes // 2, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, semantic: Tensor, matting: Tensor, encoder: Tensor) -> Tensor:
        x = torch.cat([self.transform(semantic), self.transform(matting), self.transform(encoder)], dim=1)
        return self.relu(self.bn1(self.conv1(x)))


class SBFI(nn.Module):
    """shallow Bipartite-Feature Integration: the matting feature plus detail from the full-resolution stem e0."""

    def __init__(self, planes: int, stride: int, e0_channels: int = 64) -> None:
        super().__init__()
        self.transform1 = _conv1x1(planes, planes // 2)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=stride)  # brings e0 down to this level
        self.transform2 = _conv1x1(e0_channels, planes // 2)
        self.conv1 = _conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, e0: Tensor) -> Tensor:
        detail = self.transform2(self.maxpool(e0))
        fused = self.relu(self.bn1(self.conv1(torch.cat([self.transform1(x), detail], dim=1))))
        return fused + x


class DBFI(nn.Module):
    """deep Bipartite-Feature Integration: the semantic feature plus context from e4; also emits side logits."""

    def __init__(self, planes: int, stride: int, e4_channels: int = 512) -> None:
        super().__init__()
        self.transform1 = _conv1x1(planes, planes // 2)
        self.transform2 = _conv1x1(e4_channels, planes // 2)
        self.upsample = nn.Upsample(scale_factor=stride, mode="bilinear")  # e4 (H/32) up to this level
        self.conv1 = _conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, 3)
        self.upsample2 = nn.Upsample(scale_factor=32 // stride, mode="bilinear")  # side logits to full size

    def forward(self, x: Tensor, e4: Tensor) -> tuple[Tensor, Tensor]:
        """Return (the integrated feature, the 3-class side logits at the input resolution)."""
        context = self.upsample(self.transform2(e4))
        fused = self.relu(self.bn1(self.conv1(torch.cat([self.transform1(x), context], dim=1)))) + x
        return fused, self.upsample2(self.conv2(fused))
