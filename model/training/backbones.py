"""ImageNet backbones for the transformer variants' encoders (`p3m train --arch vitae-s|swin-t --pretrained`).

ViTAE-S: the official backbone checkpoint, whose `state_dict_ema` the IJCV code loads strictly into the
encoder (SPEC §10). Swin-T: a Swin checkpoint (`model`, `state_dict` or bare). Our encoder keeps the official
names, so keys map as they are; what the architecture fixes (Swin's masks and position index, ViTAE's
Performer features) and the classifier are ours, not the file's.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor, nn

from model.p3mnet.safety import CheckpointError, check_checkpoint_file

_WRAPPERS = ("state_dict_ema", "model", "state_dict")     # the EMA weights first, as the official loader
_OURS_ONLY = (".attn.w", ".attn_mask", ".relative_position_index")   # fixed or derived: never the file's


def load_transformer_backbone(net: nn.Module, path: str | Path, title: str) -> None:
    """Load an ImageNet ViTAE-S or Swin-T backbone into `net.encoder`; CheckpointError naming any mismatch."""
    state = _read(Path(path))
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()}
    ours = net.encoder.state_dict()
    state = {k: v for k, v in state.items() if not k.endswith(_OURS_ONLY) and not k.startswith("head.")}
    unexpected = sorted(k for k in state if k not in ours)
    missing = sorted(k for k in ours if k not in state and not k.endswith(_OURS_ONLY) and not k.startswith("head.")
                     and not k.endswith("num_batches_tracked"))
    if unexpected or missing:
        parts = [f"{len(x)} {what} ({', '.join(x[:5])}{', ...' if len(x) > 5 else ''})"
                 for x, what in ((missing, "missing"), (unexpected, "unexpected")) if x]
        raise CheckpointError(f"{path}: not an ImageNet {title} backbone: " + "; ".join(parts),
                              f"pass the official {title} ImageNet checkpoint (SPEC §10)")
    wrong = [k for k in state if state[k].shape != ours[k].shape]
    if wrong:
        raise CheckpointError(f"{path}: {len(wrong)} tensor(s) have the wrong shape for {title} "
                              f"(e.g. {wrong[0]} {list(state[wrong[0]].shape)} != {list(ours[wrong[0]].shape)})",
                              f"pass the official {title} ImageNet checkpoint (SPEC §10)")
    net.encoder.load_state_dict(state, strict=False)


def _read(path: Path) -> dict[str, Tensor]:
    check_checkpoint_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused: loading it would run pickled code",
                              "use checkpoints saved as plain tensors, from sources you trust") from None
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({str(e).strip()[:120]})",
                              "re-download the backbone") from None
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state_dict of tensors",
                              "expected {'state_dict_ema': ...}, {'model': ...} or a bare state_dict")
    return obj
