"""Loading and saving P3M-Net weights (R34, ViTAE-S, Swin-T) in the official checkpoint format (SPEC §5, §6, §10).

The variant is recognised from the keys (variants.py). The official R34 state_dict has 713 entries: every
encoder tensor twice (`resnet.*` and its aliases `encoder0..4.*`, which share storage in the official model)
and the unused `resnet.fc.*`; ViTAE-S has 808, Swin-T 480. Our modules have clearer names; layouts.py is the
one place that maps official names to ours. ViTAE-S's Performer features are not in official checkpoints:
ours carry them (`encoder.layers.0.NC.{0,1}.attn.w`), and a checkpoint without them gets fixed-seed ones.

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

from model.p3mnet.layouts import is_optional, official_layout
from model.p3mnet.network import P3MNet
from model.p3mnet.safety import CheckpointError, check_checkpoint_file, check_tensor_values

_SHOW = 5  # how many key names an error message lists


def official_state_dict(net: P3MNet) -> dict[str, Tensor]:
    """The net's weights under the official names, in the official order (R34: 713 entries, aliases sharing
    tensors; ViTAE-S: the 808 official ones and the two Performer feature matrices; Swin-T: 480)."""
    ours = net.state_dict()
    return {official: ours[mine] for official, mine in _key_pairs(ours, net.arch)}


def save_official(net: P3MNet, path: str | os.PathLike) -> None:
    """Save in the official format: `{'state_dict': ...}` as .pth, or the state_dict as .safetensors
    (there without the `encoder0..4.*` aliases, since safetensors cannot store shared tensors)."""
    state = official_state_dict(net)
    if Path(path).suffix == ".safetensors":
        aliases = _alias_map(_key_pairs(net.state_dict(), net.arch))
        save_file({k: v.contiguous() for k, v in state.items() if k not in aliases}, os.fspath(path))
    else:
        torch.save({"state_dict": state}, path)


def load_p3mnet(path: str | os.PathLike, device: str | torch.device = "cpu") -> P3MNet:
    """Build the P3M-Net variant a checkpoint holds (official `{'state_dict': ...}`, bare, `module.`-prefixed or
    .safetensors) and return it in eval mode on `device`. Raises CheckpointError on any problem."""
    from model.p3mnet.variants import detect_arch

    path = Path(path)
    is_safetensors = path.suffix == ".safetensors"
    state = _read_safetensors(path) if is_safetensors else _read_torch(path)
    try:
        arch = detect_arch(state)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e.message}", e.hint) from None
    net = P3MNet(arch)
    load_official(net, state, source=str(path), aliases_optional=is_safetensors)
    return net.to(device).eval()


def load_official(
    net: P3MNet, state: dict[str, Tensor], source: str = "checkpoint", aliases_optional: bool = False
) -> None:
    """Strictly load an official-format state_dict into `net`; errors name keys by their official names."""
    ours = net.state_dict()
    pairs = _key_pairs(ours, net.arch)
    expected = {official: ours[mine] for official, mine in pairs}
    aliases = _alias_map(pairs)  # alias name -> resnet.* name

    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"{source}: {_count(bad, 'entry', 'entries')} {'is' if len(bad) == 1 else 'are'} not a tensor "
            f"({_names(bad)})",
            "expected a state_dict of tensors",
        )
    missing = [k for k in expected if k not in state and not is_optional(k)]
    if aliases_optional:
        partner = {**aliases, **{v: k for k, v in aliases.items()}}
        missing = [k for k in missing if partner.get(k) not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        n_official = sum(not is_optional(k) for k in expected)
        raise _mismatch_error(source, missing, unexpected, len(state), n_official, net.title)
    wrong_shape = [k for k in state if state[k].shape != expected[k].shape]
    if wrong_shape:
        details = ", ".join(
            f"{k} {list(state[k].shape)} != {list(expected[k].shape)}" for k in wrong_shape[:_SHOW]
        )
        raise CheckpointError(
            f"{source}: {_count(wrong_shape, 'tensor')} {'has' if len(wrong_shape) == 1 else 'have'} the wrong shape "
            f"({details}{_more(wrong_shape)})",
            f"expected the official P3M-Net {net.title} shapes (SPEC §5, §6)",
        )
    check_tensor_values(state, expected, source)
    for alias, canonical in aliases.items():
        a, c = state.get(alias), state.get(canonical)
        if a is not None and c is not None and not _same(a, c):
            raise CheckpointError(
                f"{source}: {alias} differs from {canonical}, but the two names are one tensor in P3M-Net",
                "the checkpoint was edited or corrupted; re-export it from the model",
            )

    to_ours = dict(pairs)  # an alias and its original name map to the same tensor of ours (checked equal above)
    kept = {mine: ours[mine] for official, mine in pairs if is_optional(official) and official not in state}
    net.load_state_dict({**kept, **{to_ours[k]: v for k, v in state.items()}}, strict=True)
    changed = getattr(net.encoder, "altered_fixed_buffers", lambda: [])()
    if changed:
        raise CheckpointError(
            f"{source}: {_count(changed, 'fixed buffer')} differ from what the architecture defines "
            f"({_names(changed)})",
            "the checkpoint was edited or corrupted; re-export it from the model",
        )


def _key_pairs(ours: dict[str, Tensor], arch: str) -> list[tuple[str, str]]:
    """(official key, our key) for every official entry of variant `arch`, in the official order."""
    return [
        (official + key[len(mine):], key)
        for official, mine in official_layout(arch)
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
    check_checkpoint_file(path)     # before open(): a FIFO would block it, a zip bomb would fill memory
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


def _mismatch_error(source: str, missing: list[str], unexpected: list[str], n_found: int, n_expected: int,
                    title: str = "R34"):
    if n_found and len(unexpected) == n_found:
        other = _variant_of(unexpected)
        return CheckpointError(
            f"{source}: not a P3M-Net {title} checkpoint: none of its {n_found} keys belong to it "
            f"({len(missing)} of {n_expected} missing, e.g. {_names(missing)}; "
            f"{len(unexpected)} unexpected, e.g. {_names(unexpected)})",
            f"this is a P3M-Net {other} checkpoint: use it as that variant (e.g. --model p3mnet)"
            if other
            else f"pass an official P3M-Net {title} checkpoint or one saved by `p3m train`",
        )
    parts = []
    if missing:
        parts.append(f"{_count(missing, 'missing key')} ({_names(missing)})")
    if unexpected:
        parts.append(f"{_count(unexpected, 'unexpected key')} ({_names(unexpected)})")
    return CheckpointError(
        f"{source}: does not match P3M-Net {title}: " + "; ".join(parts),
        f"expected exactly the {n_expected} entries of the official {title} state_dict (SPEC §5, §6)",
    )


def _variant_of(keys: list[str]) -> str | None:
    """The title of the P3M-Net variant these keys belong to, if any."""
    from model.p3mnet.network import ARCH_TITLES
    from model.p3mnet.variants import detect_arch

    try:
        return ARCH_TITLES[detect_arch(keys)]
    except CheckpointError:
        return None


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + _more(keys)


def _more(keys: list) -> str:
    return f", ... {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""


def _count(items: list, noun: str, plural: str = "") -> str:
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}"
