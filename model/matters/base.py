"""The Matter interface: H×W×3 uint8 RGB in, H×W float32 alpha out, at the resolution the caller chose;
resizing, upsampling and video are the stages' business."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


class Matter(ABC):
    """A matting model: H×W×3 uint8 RGB in, H×W float32 alpha in [0, 1] out, at the same size."""

    name: str
    device: str = "cpu"
    size_multiple: int = 1  # H and W given to __call__ must be multiples of this
    min_size: int = 1  # the smallest long side a caller should give it (P3M-Net Swin-T: 256)
    offline_batch: int = 1  # frames an offline job gives matte_batch at once unless told otherwise
    graph_safe: bool = False  # matte_tensor may be captured in a CUDA graph (no host syncs, static shapes)
    uses_every_core: bool = False  # its CPU work spreads over torch's threads: a job gives it every core, not one

    @abstractmethod
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The alpha matte of `rgb` (a fresh array the caller owns)."""

    def matte_batch(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The mattes of several images, as calling the matter on each (which is what this default does)."""
        return [self(rgb) for rgb in rgbs]

    def matte_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×h×w float RGB (0-255) on `device` → N×1×h×w float32 alpha there: the matting stage's device
        path. This default rounds each image to uint8 and calls the matter (a round trip through the host)."""
        import torch

        images = x.detach().round().clamp(0, 255).to("cpu", torch.uint8).permute(0, 2, 3, 1).numpy()
        alphas = [torch.from_numpy(np.asarray(self(image), np.float32)) for image in images]
        return torch.stack(alphas)[:, None].to(x.device)

    @abstractmethod
    def describe(self) -> str:
        """One line for logs and the CLI, e.g. "P3M-Net R34 on cuda"."""

    def close(self) -> None:  # noqa: B027 - optional: a matter without native resources has nothing to do
        """Release native resources; idempotent."""

    def __enter__(self) -> Matter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
