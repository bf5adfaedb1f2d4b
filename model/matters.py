"""One interface for matting models: `alpha = matter(rgb)`, for P3M-Net and the bundled MediaPipe segmenter.

A Matter sees one RGB image at the (reduced) resolution chosen by the caller and returns its alpha at
that resolution; resizing, upsampling and video are the stages' business. `make_matter` picks one by
name from a small registry, which tests extend with their own doubles through `register_matter`.
P3M-Net's matter lives in model/p3mnet_matter.py: it loads torch, which this module and the bundled
model do not.

Where `auto` looks for P3M-Net weights: `$XDG_CONFIG_HOME/p3m-stream/p3mnet.pth`, or
`~/.config/p3m-stream/p3mnet.pth` when XDG_CONFIG_HOME is unset.
"""
from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from model.errors import P3MError
from model.mediapipe_import import import_mediapipe
from model.native import quiet_native_stderr

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
# P3M-Net's precisions on CUDA (model/fast.py), the default first; here, where the CLI and configs read them
# without loading torch.
PRECISIONS: tuple[str, ...] = ("mixed", "fp16", "bf16", "fp32")


class Matter(ABC):
    """A matting model: H×W×3 uint8 RGB in, H×W float32 alpha in [0, 1] out, at the same size."""

    name: str
    device: str = "cpu"
    size_multiple: int = 1  # H and W given to __call__ must be multiples of this
    offline_batch: int = 1  # frames an offline job gives matte_batch at once unless told otherwise
    graph_safe: bool = False  # matte_tensor may be captured in a CUDA graph (no host syncs, static shapes)

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

    def close(self) -> None:
        """Release native resources; idempotent."""

    def __enter__(self) -> "Matter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MediaPipeMatter(Matter):
    """The bundled MediaPipe selfie segmenter (Tasks API, CPU); its person confidence mask is the alpha.

    Two models: `general` (256×256 input) and `landscape` (144×256). `auto` gives each image the one whose
    input shape is nearer its own: landscape for images wider than 4:3, general for the rest. On 16:9
    frames of the 14 P3M portraits the two are equally close to P3M-Net (mean |Δα| 0.030 vs 0.033-0.036, each
    nearer on about half) and landscape costs two thirds (4.5 vs 6.6 ms); on the portraits' own, mostly
    upright shapes general is twice as close.
    """

    name = "mediapipe"
    VARIANTS = {"general": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
    offline_batch = 2       # two segmenters at once (matte_batch): +8 % median in the 720p cut-out on 2 cores

    def __init__(self, variant: str = "auto") -> None:
        if variant not in ("auto", *self.VARIANTS):
            raise P3MError(f"unknown MediaPipe variant {variant!r}",
                           f"use one of: auto, {', '.join(self.VARIANTS)}")
        used = list(self.VARIANTS) if variant == "auto" else [variant]
        for name in used:
            if not (ASSETS / self.VARIANTS[name]).is_file():
                raise P3MError(f"bundled MediaPipe model missing: {ASSETS / self.VARIANTS[name]}",
                               "reinstall p3m-stream, or run python model/assets/extract_assets.py")
        import_mediapipe()              # deferred: native runtime; its unused plotting helpers skipped
        self.variant = variant
        # Per model: the first segmenter serves single calls, the others matte_batch's extra images.
        self._segmenters: dict[str, list] = {name: [self._new_segmenter(name)] for name in used}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._chosen: set[str] = set()                # the models auto has given images so far

    @staticmethod
    def _new_segmenter(variant: str):
        from mediapipe.tasks.python import BaseOptions, vision

        # IMAGE mode: VIDEO mode gave bit-identical masks (the segmenter keeps no temporal state) but
        # demands increasing timestamps, which a matter that sees dropped or repeated frames would have
        # to invent. Temporal smoothing is the TemporalSmoother stage's job.
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(ASSETS / MediaPipeMatter.VARIANTS[variant])),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        with quiet_native_stderr():      # TFLite and glog announce themselves on stderr at every load
            return vision.ImageSegmenter.create_from_options(options)

    def variant_for(self, height: int, width: int) -> str:
        """The model an image of this size gets."""
        if self.variant != "auto":
            return self.variant
        return "landscape" if 3 * width > 4 * height else "general"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return _segment(self._segmenters_for(rgb, 1)[0], rgb)

    def matte_batch(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The images at once, each on its own segmenter and thread (same mattes as one by one). A MediaPipe
        call passes through three threads (the caller's, its dispatcher's, its graph's) and waits at each
        handoff when the cores are busy; two calls in flight keep 2 cores busier (bench/RESULTS.md)."""
        if len(rgbs) < 2 or len({rgb.shape for rgb in rgbs}) > 1:
            return [self(rgb) for rgb in rgbs]
        first, *spares = self._segmenters_for(rgbs[0], len(rgbs))
        others = [self._pool.submit(_segment, s, rgb) for s, rgb in zip(spares, rgbs[1:])]
        return [_segment(first, rgbs[0]), *(future.result() for future in others)]

    def _segmenters_for(self, rgb: np.ndarray, n: int) -> list:
        """`n` segmenters of the model for `rgb`'s shape; more are made (and the pool grown) on first need."""
        if not self._segmenters:
            raise RuntimeError("MediaPipeMatter used after close()")
        variant = self.variant_for(*rgb.shape[:2])
        self._chosen.add(variant)
        segmenters = self._segmenters[variant]
        if len(segmenters) < n:
            segmenters += [self._new_segmenter(variant) for _ in range(n - len(segmenters))]
        if n - 1 > self._pool_size:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(n - 1, thread_name_prefix="p3m-mediapipe"), n - 1
        return segmenters[:n]

    def describe(self) -> str:
        if self.variant != "auto":
            return f"bundled MediaPipe selfie segmenter ({self.variant}, CPU)"
        if not self._chosen:
            return "bundled MediaPipe selfie segmenter (landscape for frames wider than 4:3, else general; CPU)"
        return f"bundled MediaPipe selfie segmenter ({' and '.join(sorted(self._chosen))}, chosen by shape; CPU)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool, self._pool_size = None, 0
        for segmenters in self._segmenters.values():
            for segmenter in segmenters:
                segmenter.close()
        self._segmenters = {}


def _segment(segmenter, rgb: np.ndarray) -> np.ndarray:
    """One MediaPipe segmenter's person confidence for an H×W×3 uint8 RGB image, as a fresh float32 array."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    mask = segmenter.segment(image).confidence_masks[0].numpy_view()
    # The view aliases a buffer the next call overwrites: copy before returning.
    return np.clip(mask.reshape(rgb.shape[:2]), 0.0, 1.0).astype(np.float32, copy=True)


# name -> factory(weights, device) -> Matter
MatterFactory = Callable[[Path | None, str, str], Matter]   # (weights, device, precision)
_REGISTRY: dict[str, MatterFactory] = {}


def register_matter(name: str, factory: MatterFactory) -> None:
    """Make `make_matter(name, weights, device, precision=…)` call `factory(weights, device, precision)`;
    replaces any earlier entry."""
    if name == "auto":
        raise ValueError("'auto' is reserved for make_matter's own choice")
    _REGISTRY[name] = factory


def matter_names() -> list[str]:
    """The names make_matter accepts, `auto` first."""
    return ["auto", *sorted(_REGISTRY)]


def default_weights_path() -> Path:
    """Where `auto` looks for a P3M-Net checkpoint: $XDG_CONFIG_HOME (or ~/.config)/p3m-stream/p3mnet.pth."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "p3m-stream" / "p3mnet.pth"


def make_matter(name: str = "auto", weights: str | Path | None = None, device: str = "auto", *,
                precision: str = "mixed") -> Matter:
    """The matter called `name`; `auto` is P3M-Net when weights are given or found, else MediaPipe.
    `precision` is P3M-Net's on CUDA (model/fast.py); another model refuses any but the default."""
    if name == "auto":
        if weights is None and default_weights_path().is_file():
            weights = default_weights_path()
        name = "p3mnet" if weights is not None else "mediapipe"
    if name not in _REGISTRY:
        raise P3MError(f"unknown model {name!r}", f"use one of: {', '.join(matter_names())}")
    if name != "p3mnet" and precision != "mixed":
        raise P3MError(f"precision {precision} is a P3M-Net setting; the model here is {name}",
                       "drop --precision, or give P3M-Net weights")
    return _REGISTRY[name](Path(weights) if weights is not None else None, device, precision)


def _p3mnet(weights: Path | None, device: str, precision: str) -> Matter:
    if weights is None:
        raise P3MError("P3M-Net needs weights",
                       f"give --weights PATH, or put a checkpoint at {default_weights_path()}")
    from model.p3mnet_matter import P3MNetMatter     # deferred: it loads torch

    return P3MNetMatter(weights, device, precision=precision)


def _mediapipe(variant: str) -> MatterFactory:
    def factory(weights: Path | None, device: str, precision: str) -> Matter:
        if weights is not None:
            raise P3MError(f"the MediaPipe model takes no weights (got {weights})",
                           "drop --weights, or use --model p3mnet to run those weights")
        if device not in ("auto", "cpu"):
            raise P3MError(f"the MediaPipe model runs on the CPU only (asked for {device})",
                           "use --device auto or cpu, or P3M-Net weights for the GPU")
        return MediaPipeMatter(variant)
    return factory


register_matter("p3mnet", _p3mnet)
register_matter("mediapipe", _mediapipe("auto"))
register_matter("mediapipe-general", _mediapipe("general"))
register_matter("mediapipe-landscape", _mediapipe("landscape"))
