"""Pick the torch device a user asked for, with a clear error when it is not there."""
from __future__ import annotations

import torch

from model.errors import P3MError


def resolve_device(name: str = "auto") -> str:
    """`auto` gives cuda when present, else cpu; `cuda` without a GPU is a user error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise P3MError("--device cuda: no CUDA GPU is available to this torch build",
                       "use --device cpu (or auto), or install a CUDA build of torch")
    if name not in ("cpu", "cuda"):
        raise P3MError(f"unknown device {name!r}", "use auto, cpu or cuda")
    return name
