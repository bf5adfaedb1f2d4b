"""P3M-Net behind the Matter interface (model/matters/base.py): ImageNet-normalised float32 in, fused alpha out.

Apart from model/matters/registry.py so that choosing and running the bundled MediaPipe model never imports torch.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model.errors import P3MError
from model.matters.base import Matter
from model.p3mnet.inference import IMAGENET_MEAN, IMAGENET_STD
from model.p3mnet.network import MIN_SIDE
from model.runtime.devices import resolve_device
from model.runtime.precision import PRECISIONS

log = logging.getLogger(__name__)


class P3MNetMatter(Matter):
    """P3M-Net's fused alpha: ImageNet-normalised float32 input, CUDA when available.

    On CUDA it runs the fast path (model/runtime/fast_p3mnet.py): BN folded, `precision` (default mixed: within 1/255 of
    float32), channels_last, CUDA graphs (`cuda_graph`), optionally torch.compile. The CPU path is float32.
    """

    name = "p3mnet"
    size_multiple = 32

    def __init__(self, weights: str | Path, device: str = "auto", *, precision: str = "mixed",
                 cuda_graph: bool = True, compile: str | None = None, arch: str | None = None) -> None:
        from model.p3mnet.checkpoint import load_p3mnet  # raises CheckpointError (a P3MError) for a bad file

        if precision not in PRECISIONS:
            raise P3MError(f"unknown precision {precision!r}", f"use one of: {', '.join(PRECISIONS)}")
        self.device = resolve_device(device)
        if self.device == "cpu" and precision != "mixed":
            log.info("precision %s applies on CUDA; on the CPU P3M-Net runs in float32", precision)
        self.uses_every_core = self.device == "cpu"     # heavy enough on the CPU to keep every core busy
        self.weights = Path(weights).expanduser()
        self.net = load_p3mnet(self.weights, device=self.device)
        self.arch = getattr(self.net, "arch", "r34")     # a stand-in network (tests) is taken as R34
        if arch is not None and self.arch != arch:
            raise P3MError(f"{self.weights} holds P3M-Net {self.arch}, not {arch}",
                           f"use --model p3mnet-{self.arch} (or --model p3mnet, which takes any variant)")
        self.title = {"r34": "R34", "vitae-s": "ViTAE-S", "swin-t": "Swin-T"}[self.arch]
        # Swin-T pads inputs under 256 px a side to its smallest window-valid size: a pipeline size under it
        # would mostly compute padding (model/p3mnet/network.py MIN_SIDE).
        self.min_size = MIN_SIDE[self.arch]
        # channels_last: faster convolutions on the CPU, the same fused alpha.
        self._memory_format = torch.channels_last if self.device == "cpu" else torch.contiguous_format
        self.net.to(memory_format=self._memory_format)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255
        self.fast = None
        if self.device == "cuda":
            from model.runtime.fast_p3mnet import FastP3MNet

            self.fast = FastP3MNet(self.net, self.device, precision=precision, cuda_graph=cuda_graph, compile=compile)
            self.net = None          # the fast path holds its own (folded) copy
            self.graph_safe = self.fast.graph_safe
            self.offline_batch = 8    # a batch of frames costs less a frame than one at a time (bench/RESULTS.md)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        _check_size(rgb)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float()
        return self._alpha(x)[0, 0].float().cpu().numpy()

    @torch.inference_mode()
    def matte_batch(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One forward for all images when they share a size (else one each); same mattes as one by one."""
        if len(rgbs) < 2 or len({rgb.shape for rgb in rgbs}) > 1:
            return [self(rgb) for rgb in rgbs]
        _check_size(rgbs[0])
        x = torch.from_numpy(np.stack(rgbs)).to(self.device).permute(0, 3, 1, 2).float()
        alpha = self._alpha(x)[:, 0].float().cpu().numpy()
        return [a.copy() for a in alpha]

    def matte_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×h×w RGB (0-255) on the device → N×1×h×w float32 alpha: eager, so a caller may graph-capture it."""
        x = (x - self._mean) / self._std
        if self.fast is not None:
            return self.fast.step(x)
        with torch.inference_mode():
            return self.net(x.contiguous(memory_format=self._memory_format)).fused_alpha.clamp(0.0, 1.0)

    def _alpha(self, x: torch.Tensor) -> torch.Tensor:
        """N×1×h×w alpha of N×3×h×w RGB (0-255); on CUDA a graph's static output (copy it before the next call)."""
        x = (x - self._mean) / self._std
        if self.fast is not None:
            return self.fast(x)
        return self.net(x.contiguous(memory_format=self._memory_format)).fused_alpha.clamp(0.0, 1.0)

    def describe(self) -> str:
        where = f"cuda, {self.fast.precision}" if self.fast is not None else self.device
        return f"P3M-Net {self.title} on {where} ({self.weights.name})"

    def close(self) -> None:
        self.net = None  # frees GPU memory once the last frame referencing it is gone
        self.fast = None


def _check_size(rgb: np.ndarray) -> None:
    """ValueError unless the H×W×3 image's sides are multiples of 32 (what P3M-Net takes)."""
    h, w = rgb.shape[:2]
    if h % 32 or w % 32:
        raise ValueError(f"P3M-Net input must be a multiple of 32 on both sides, got {w}×{h}")
