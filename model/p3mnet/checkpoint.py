"""Loading and saving P3M-Net R34 weights in the official checkpoint format (SPEC §5, §10).

The official state_dict has 713 entries: every encoder tensor twice (`resnet.*` and its aliases
`encoder0..4.*`, which share storage in the official model) and the unused `resnet.fc.*`. Our modules
have clearer names; `OFFICIAL_LAYOUT` below is the one place that maps official names to ours.

Alias policy: a .pth must hold both names (strict, as the official loader); a .safetensors file may hold
either or both (safetensors cannot store a shared tensor twice). Where both are present they must be equal.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from model.errors import P3MError
from model.p3mnet.network import P3MNet

# (official prefix, our prefix), in the official state_dict order. Rows after the first whose "ours" falls
# inside the encoder are the official aliases of `resnet.*` (same tensors, second name).
OFFICIAL_LAYOUT: tuple[tuple[str, str], ...] = (
    ("resnet.", "encoder."),
    ("encoder0.0.", "encoder.conv1."),
    ("encoder0.1.", "encoder.bn1."),
    ("encoder1.0.", "encoder.layer1."),
    ("encoder2.", "encoder.layer2."),
    ("encoder3.", "encoder.layer3."),
    ("encoder4.", "encoder.layer4."),
    *((f"tfi_{i}.", f"matting_decoder.tfi{i}.") for i in (3, 2, 1, 0)),
    *((f"sbfi_{i}.", f"matting_decoder.sbfi{i}.") for i in (2, 1, 0)),
    *((f"dbfi_{i}.", f"semantic_decoder.dbfi{i}.") for i in (2, 1, 0)),
    *((f"decoder{i}_g.", f"semantic_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    *((f"decoder{i}_l.", f"matting_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    ("decoder_final_l.", "matting_decoder.final."),
)


_SHOW = 5  # how many key names an error message lists


class CheckpointError(P3MError):
    """A checkpoint that cannot be read, is unsafe, or does not fit P3M-Net R34."""


def official_state_dict(net: P3MNet) -> dict[str, Tensor]:
    """The net's weights under the official names: 713 entries in the official order, aliases sharing tensors."""
    ours = net.state_dict()
    return {official: ours[mine] for official, mine in _key_pairs(ours)}


def save_official(net: P3MNet, path: str | os.PathLike) -> None:
    """Save in the official format: `{'state_dict': ...}` as .pth, or the state_dict as .safetensors
    (there without the `encoder0..4.*` aliases, since safetensors cannot store shared tensors)."""
    state = official_state_dict(net)
    if Path(path).suffix == ".safetensors":
        aliases = _alias_map(_key_pairs(net.state_dict()))
        save_file({k: v.contiguous() for k, v in state.items() if k not in aliases}, os.fspath(path))
    else:
        torch.save({"state_dict": state}, path)


def load_p3mnet(path: str | os.PathLike, device: str | torch.device = "cpu") -> P3MNet:
    """Build P3M-Net R34 from a checkpoint (official `{'state_dict': ...}`, bare, `module.`-prefixed or
    .safetensors) and return it in eval mode on `device`. Raises CheckpointError on any problem."""
    path = Path(path)
    is_safetensors = path.suffix == ".safetensors"
    state = _read_safetensors(path) if is_safetensors else _read_torch(path)
    net = P3MNet()
    load_official(net, state, source=str(path), aliases_optional=is_safetensors)
    return net.to(device).eval()


def load_official(
    net: P3MNet, state: dict[str, Tensor], source: str = "checkpoint", aliases_optional: bool = False
) -> None:
    """Strictly load an official-format state_dict into `net`; errors name keys by their official names."""
    ours = net.state_dict()
    pairs = _key_pairs(ours)
    expected = {official: ours[mine] for official, mine in pairs}
    aliases = _alias_map(pairs)  # alias name -> resnet.* name

    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"{source}: {_count(bad, 'entry', 'entries')} {'is' if len(bad) == 1 else 'are'} not a tensor "
            f"({_names(bad)})",
            "expected a state_dict of tensors",
        )
    missing = [k for k in expected if k not in state]
    if aliases_optional:
        partner = {**aliases, **{v: k for k, v in aliases.items()}}
        missing = [k for k in missing if partner.get(k) not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise _mismatch_error(source, missing, unexpected, len(state), len(expected))
    wrong_shape = [k for k in state if state[k].shape != expected[k].shape]
    if wrong_shape:
        details = ", ".join(
            f"{k} {list(state[k].shape)} != {list(expected[k].shape)}" for k in wrong_shape[:_SHOW]
        )
        raise CheckpointError(
            f"{source}: {_count(wrong_shape, 'tensor')} {'has' if len(wrong_shape) == 1 else 'have'} the wrong shape "
            f"({details}{_more(wrong_shape)})",
            "expected the official P3M-Net ResNet-34 shapes (SPEC §5)",
        )
    for alias, canonical in aliases.items():
        a, c = state.get(alias), state.get(canonical)
        if a is not None and c is not None and not _same(a, c):
            raise CheckpointError(
                f"{source}: {alias} differs from {canonical}, but the two names are one tensor in P3M-Net",
                "the checkpoint was edited or corrupted; re-export it from the model",
            )

    to_ours = dict(pairs)  # an alias and its original name map to the same tensor of ours (checked equal above)
    net.load_state_dict({to_ours[k]: v for k, v in state.items()}, strict=True)


def _key_pairs(ours: dict[str, Tensor]) -> list[tuple[str, str]]:
    """(official key, our key) for every official entry, in the official order."""
    return [
        (official + key[len(mine):], key)
        for official, mine in OFFICIAL_LAYOUT
        for key in ours
        if key.startswith(mine)
    ]


def _alias_map(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """alias official key -> the official key it duplicates (the first official name of the same tensor)."""
    first: dict[str, str] = {}
    aliases = {}
    for official, mine in pairs:
        if mine in first:
            aliases[official] = first[mine]
        else:
            first[mine] = official
    return aliases


def _read_torch(path: Path) -> dict[str, Tensor]:
    head = _head(path)
    if not head:
        raise CheckpointError(f"{path}: the file is empty", "re-download or re-save the checkpoint")
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        kind = "text" if _looks_like_text(head) else "data of an unknown format"
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (the file holds {kind})",
            "pass a .pth/.pt saved with torch.save, or a .safetensors file",
        )
    try:
        with warnings.catch_warnings():     # e.g. "Detected pickle protocol 4": noise before our own error
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: loading it would run pickled code{what}; a weights-only checkpoint never needs that",
            "use checkpoints only from sources you trust, saved as plain tensors (or .safetensors)",
        ) from None
    except Exception as e:  # zip/pickle errors for truncated or corrupted files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: cannot read the checkpoint, it is truncated or corrupted ({first[:120]})",
            "re-download or re-save the checkpoint",
        ) from None
    return _unwrap(obj, path)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    _head(path)
    try:
        state = load_file(os.fspath(path), device="cpu")
    except Exception as e:
        raise CheckpointError(
            f"{path}: cannot read the safetensors file, it is truncated or corrupted ({str(e)[:120]})",
            "re-download or re-convert the checkpoint",
        ) from None
    return _strip_module_prefix(state)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}", "check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint path is a directory: {path}", "pass the checkpoint file itself") from None
    except OSError as e:
        raise CheckpointError(f"cannot open checkpoint {path}: {e.strerror}", "check the path and permissions") \
            from None


def _looks_like_text(head: bytes) -> bool:
    return all(b >= 32 or b in b"\t\n\r" for b in head)


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    """The state_dict inside an official `{'state_dict': ...}`, a bare state_dict, or a DataParallel one."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not a state_dict",
            "expected {'state_dict': {name: tensor}} or {name: tensor}",
        )
    return _strip_module_prefix(obj)


def _strip_module_prefix(state: dict) -> dict:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _same(a: Tensor, b: Tensor) -> bool:
    shares = a.data_ptr() == b.data_ptr() and a.stride() == b.stride() and a.dtype == b.dtype
    return shares or bool(torch.equal(a, b))


def _mismatch_error(source: str, missing: list[str], unexpected: list[str], n_found: int, n_expected: int):
    if n_found and len(unexpected) == n_found:
        vitae = any(k.startswith(("encoder.layers.", "decoder.")) for k in unexpected)
        return CheckpointError(
            f"{source}: not a P3M-Net ResNet-34 checkpoint: none of its {n_found} keys belong to it "
            f"({len(missing)} of {n_expected} missing, e.g. {_names(missing)}; "
            f"{len(unexpected)} unexpected, e.g. {_names(unexpected)})",
            "this looks like the ViTAE-S variant, which is not supported yet"
            if vitae
            else "pass the official P3M-Net R34 checkpoint (p3mnet_pretrained_on_p3m10k.pth)",
        )
    parts = []
    if missing:
        parts.append(f"{_count(missing, 'missing key')} ({_names(missing)})")
    if unexpected:
        parts.append(f"{_count(unexpected, 'unexpected key')} ({_names(unexpected)})")
    return CheckpointError(
        f"{source}: does not match P3M-Net R34: " + "; ".join(parts),
        f"expected exactly the {n_expected} entries of the official ResNet-34 state_dict (SPEC §5)",
    )


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + _more(keys)


def _more(keys: list) -> str:
    return f", ... {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""


def _count(items: list, noun: str, plural: str = "") -> str:
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}"
