"""Test doubles: stages and matters whose output a test can predict, and the scenes they work on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.media import square_alpha
from model.matters.base import Matter
from model.matters.registry import register_matter
from stream.frames import Frame
from stream.protocols import Sink


class Passthrough:
    """The trivial stage: output = image."""

    def process(self, frame: Frame) -> Frame:
        frame.output = frame.image
        return frame


class ListSink(Sink):
    """Keeps every frame written to it, in order."""

    path = "list"

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.frames_written += 1


class SquareMatte:
    """A stage that cuts out with the known matte `square_alpha(index)`: RGBA output, alpha set."""

    def process(self, frame: Frame) -> Frame:
        frame.alpha = square_alpha(frame.index, frame.image.shape[1], frame.image.shape[0])
        a8 = (frame.alpha * 255 + 0.5).astype(np.uint8)
        frame.output = np.dstack([frame.image, a8])
        return frame



GREEN = (0, 255, 0)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class RedKeyMatter(Matter):
    """A tiny test double: alpha 1 on red pixels (a red square, a red shape), 0 elsewhere; `--model red-key`."""

    name = "red-key"

    def describe(self) -> str:
        return "red-key test double"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return ((rgb[..., 0] > 150) & (rgb[..., 2] < 120)).astype(np.float32)


register_matter("red-key", lambda weights, device, precision: RedKeyMatter())


class KeyMatter(Matter):
    """Test double: alpha from the distance to pure green; records the batch shapes matte_tensor saw."""

    name = "key"

    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return np.clip(np.abs(rgb.astype(np.float32) - GREEN).sum(-1) / 300, 0, 1)

    def matte_tensor(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(tuple(x.shape))
        return super().matte_tensor(x)

    def describe(self) -> str:
        return "green key (test)"


def scene(i: int, height: int = 96, width: int = 160) -> np.ndarray:
    """A person-like blob moving over green, with a soft edge and a gradient: frame `i`."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    blob = np.clip(1.5 - np.hypot((x - 50 - 6 * i) / 30, (y - 50) / 40), 0, 1)[..., None]
    person = np.stack([150 + 0.5 * x, 90 + 0.3 * y, 80 + 0 * x], -1)
    return (blob * person + (1 - blob) * np.array(GREEN, np.float32)).round().clip(0, 255).astype(np.uint8)


def scene_frames(n: int, **size: int) -> list[Frame]:
    return [Frame(index=i, image=scene(i, **size)) for i in range(n)]
