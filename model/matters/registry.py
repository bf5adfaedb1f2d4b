"""One interface for matting models: `alpha = matter(rgb)`, for P3M-Net and the bundled MediaPipe segmenter.

A Matter sees one RGB image at the (reduced) resolution chosen by the caller and returns its alpha at
that resolution; resizing, upsampling and video are the stages' business. `make_matter` picks one by
name from a small registry, which tests extend with their own doubles through `register_matter`.
P3M-Net's matter lives in model/matters/p3mnet.py: it loads torch, which this module and the bundled
model do not.

What `auto` picks (model/matters/auto.py): the best P3M-Net installed by `p3m models`, else weights at the old
location `$XDG_CONFIG_HOME/p3m-stream/p3mnet.pth` (or `~/.config/...`), else the bundled MediaPipe model.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.errors import P3MError
from model.matters import auto
from model.matters.base import Matter
from model.matters.selfie import MediaPipeMatter
from model.zoo.store import legacy_weights_path

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
    """The old place `auto` looks for a P3M-Net checkpoint: $XDG_CONFIG_HOME (or ~/.config)/p3m-stream/p3mnet.pth."""
    return legacy_weights_path()


def make_matter(name: str = "auto", weights: str | Path | None = None, device: str = "auto", *,
                precision: str = "mixed") -> Matter:
    """The matter called `name`; `auto` is P3M-Net when weights are given or found, else MediaPipe.
    `precision` is P3M-Net's on CUDA (model/runtime/precision.py); another model refuses any but the default."""
    if name == "auto":
        name, weights = auto.choose(Path(weights) if weights is not None else None)
    elif weights is None:
        weights = auto.installed_weights(name)      # `--model p3mnet-vitae-s` runs the installed one
    if name not in _REGISTRY:
        raise P3MError(f"unknown model {name!r}", f"use one of: {', '.join(matter_names())}")
    if not name.startswith("p3mnet") and precision != "mixed":
        raise P3MError(f"precision {precision} is a P3M-Net setting; the model here is {name}",
                       "drop --precision, or give P3M-Net weights")
    return _REGISTRY[name](Path(weights) if weights is not None else None, device, precision)


def _p3mnet(weights: Path | None, device: str, precision: str, arch: str | None = None) -> Matter:
    if weights is None:
        raise P3MError("P3M-Net needs weights",
                       f"give --weights PATH, or install one: {auto.DOWNLOAD_HINT.split(': ')[-1]}")
    from model.matters.p3mnet import P3MNetMatter  # deferred: it loads torch

    return P3MNetMatter(weights, device, precision=precision, arch=arch)


def _p3mnet_variant(arch: str) -> MatterFactory:
    """`p3mnet-<arch>`: P3M-Net whose weights must be that variant's (`p3mnet` takes any, told by its keys)."""
    def factory(weights: Path | None, device: str, precision: str) -> Matter:
        return _p3mnet(weights, device, precision, arch)
    return factory


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


for _arch in ("r34", "vitae-s", "swin-t"):     # model/p3mnet/variants.py ARCHS, without importing torch here
    register_matter(f"p3mnet-{_arch}", _p3mnet_variant(_arch))


register_matter("mediapipe", _mediapipe("auto"))


register_matter("mediapipe-general", _mediapipe("general"))


register_matter("mediapipe-landscape", _mediapipe("landscape"))
