"""What a checkpoint must pass before torch reads it (a regular file, no bigger unpacked than any P3M-Net
could be) and after (float tensors where the network has floats, finite values).

CheckpointError lives here so that these checks and the loader in checkpoint.py raise the same error.
"""
from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from model.errors import P3MError

# The largest variant, Swin-T, is 191 MB in float32 (VARIANTS.md: 45.1 M parameters plus buffers); twice that
# leaves room for float64 and extra entries while a zip bomb stays far below the 4.5 GB one inflates to.
MAX_CHECKPOINT_BYTES = 512 * 2**20
MAX_ZIP_MEMBERS = 20_000     # one per tensor storage: about 800 for the largest official checkpoint

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


class CheckpointError(P3MError):
    """A checkpoint that cannot be read, is unsafe, or does not fit the P3M-Net it claims to be."""


def check_checkpoint_file(path: Path, limit: int = MAX_CHECKPOINT_BYTES) -> None:
    """Refuse, without opening it, anything but a regular file within `limit` bytes once unpacked.

    A FIFO or a device would block or never end; a zip member's declared size is checked before torch inflates
    it (torch's own checkpoints store members uncompressed, so a compressed giant is a zip bomb)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}", "check the path") from None
    except OSError as e:
        raise CheckpointError(f"cannot open checkpoint {path}: {e.strerror}", "check the path and permissions") \
            from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"checkpoint path is a directory: {path}", "pass the checkpoint file itself")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise CheckpointError(f"{path}: the checkpoint is {kind}, not a regular file",
                              "save the checkpoint to a file and pass that")
    if info.st_size > limit:
        raise CheckpointError(f"{path}: {_mb(info.st_size)} is over the {_mb(limit)} limit for a P3M-Net checkpoint",
                              "pass a P3M-Net checkpoint (the largest variant, Swin-T, is about 191 MB)")
    if zipfile.is_zipfile(path):
        _check_zip_members(path, limit)


def _check_zip_members(path: Path, limit: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return                           # unreadable: torch.load reports it as truncated or corrupted
    if len(members) > MAX_ZIP_MEMBERS:
        raise CheckpointError(f"{path}: holds {len(members)} archive members, over the limit of {MAX_ZIP_MEMBERS}",
                              "pass a P3M-Net checkpoint saved with torch.save")
    declared = sum(m.file_size for m in members)
    if declared > limit:
        raise CheckpointError(
            f"{path}: unpacks to {_mb(declared)} (declared in the file), over the {_mb(limit)} limit for a "
            f"P3M-Net checkpoint; refused before reading",
            "pass a P3M-Net checkpoint saved with torch.save (the largest variant, Swin-T, is about 191 MB)",
        )


def check_tensor_values(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    """Refuse tensors of another kind than the network's (an int8 weight, a float index) and non-finite floats:
    both load without complaint and give a matte of nonsense."""
    wrong_kind = [k for k, v in state.items() if k in expected and _kind(v) != _kind(expected[k])]
    if wrong_kind:
        k = wrong_kind[0]
        raise CheckpointError(
            f"{source}: {len(wrong_kind)} tensor(s) have the wrong dtype (e.g. {k} is {_dtype(state[k])}, "
            f"P3M-Net's is {_dtype(expected[k])})",
            "weights must be floating point (float32, float16, bfloat16 or float64); re-export the checkpoint",
        )
    not_finite = [k for k, v in state.items() if v.is_floating_point() and not _finite(v)]
    if not_finite:
        raise CheckpointError(
            f"{source}: {len(not_finite)} tensor(s) hold NaN or infinite values (e.g. {not_finite[0]})",
            "the weights are corrupted (or training diverged); use an earlier checkpoint",
        )


def _finite(t: Tensor) -> bool:
    """Whether every value is finite: min and max carry any NaN or infinity (one pass, no mask allocated)."""
    if t.numel() == 0:
        return True
    low, high = torch.aminmax(t.detach().reshape(-1))
    return bool(low.isfinite() & high.isfinite())


def _kind(t: Tensor) -> str:
    if t.is_floating_point() or t.is_complex():
        return "float" if t.is_floating_point() else "complex"
    return "bool" if t.dtype == torch.bool else "int"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e6:.2f} MB"
