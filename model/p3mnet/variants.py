"""The three P3M-Net variants (IJCV 2023): which exist, how to build one, and which one a checkpoint holds."""
from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from model.p3mnet.network import ARCHS, P3MNet
from model.p3mnet.safety import CheckpointError

__all__ = ["ARCHS", "build_network", "detect_arch"]

# A key only that variant's official state_dict has (SPEC §5, §6; VARIANTS.md §5).
# R34 has two names for its stem (the `encoder0.*` aliases may stand alone in a .safetensors file).
_MARKERS: dict[str, tuple[str, ...]] = {
    "r34": ("resnet.conv1.weight", "encoder0.0.weight"),
    "vitae-s": ("encoder.layers.0.RC.proj1.weight",),
    "swin-t": ("encoder.patch_embed.proj1.weight",),
}


def build_network(arch: str) -> nn.Module:
    """A P3M-Net of variant `arch` (one of ARCHS) with random weights; works under `torch.device("meta")`."""
    return P3MNet(arch)


def detect_arch(keys: Iterable[str]) -> str:
    """The variant whose official state_dict these keys come from (a `module.` prefix is allowed).

    Raises CheckpointError when no variant, or more than one, matches."""
    names = {k[len("module."):] if k.startswith("module.") else k for k in keys}
    found = [arch for arch, markers in _MARKERS.items() if any(m in names for m in markers)]
    if len(found) == 1:
        return found[0]
    if found:
        raise CheckpointError(f"the checkpoint mixes the keys of P3M-Net {' and '.join(found)}",
                              "re-export it from one model")
    raise CheckpointError(
        f"not a P3M-Net checkpoint: none of its {len(names)} keys marks a variant "
        f"(looked for {', '.join(m for markers in _MARKERS.values() for m in markers)})",
        "pass an official P3M-Net checkpoint (R34, ViTAE-S or Swin-T) or one saved by `p3m train`",
    )
