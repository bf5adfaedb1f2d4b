"""The check before install: the checkpoint inside a download (the file, or the one .pth in a zip around it),
loaded with weights_only and held to the catalog entry's variant: exact keys and shapes for a P3M-Net, the
encoder's for a backbone; float dtypes and finite values (model/p3mnet/safety.py); and its sha256."""
from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from model.p3mnet.safety import CheckpointError, check_checkpoint_file
from model.zoo.catalog import ModelEntry

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".safetensors")
BACKBONE_WRAPPERS = ("state_dict_ema", "state_dict", "model")     # ViTAE's EMA weights are what the authors load
BACKBONE_PREFIXES = ("module.", "resnet.", "encoder.")
MIN_BACKBONE_COVER = 0.8        # share of the encoder's parameters a transformer backbone must supply


def unpack(download: Path, workdir: Path) -> Path:
    """The checkpoint file in `download`: itself, or the single checkpoint inside a zip around it (as the
    ViTAE-S download is), extracted into `workdir`; the zip's declared sizes were checked against the limit."""
    check_checkpoint_file(download)
    if not zipfile.is_zipfile(download):
        return download
    with zipfile.ZipFile(download) as archive:
        names = archive.namelist()
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return download                          # torch.save's own zip format: the checkpoint itself
        inside = [i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(CHECKPOINT_SUFFIXES)
                  and not i.filename.startswith("__MACOSX/")]
        if len(inside) != 1:
            names = ", ".join(i.filename for i in inside[:3])
            what = f"{len(inside)} checkpoints ({names})" if inside else "no checkpoint"
            raise CheckpointError(f"{download}: a zip archive with {what} inside",
                                  "expected a .pth, or a .zip around one .pth (as the official ViTAE-S download)")
        member = inside[0]
        target = workdir / Path(member.filename).name
        with archive.open(member) as src, open(target, "wb") as dst:   # reads at most the declared size
            shutil.copyfileobj(src, dst, 2**20)
    return target


def check(model: ModelEntry, path: Path) -> str:
    """Refuse `path` (CheckpointError) unless it is model's kind and variant; a one-line summary otherwise."""
    if model.kind == "p3mnet":
        from model.p3mnet.checkpoint import load_p3mnet

        net = load_p3mnet(path)          # weights_only, strict keys and shapes, float dtypes, finite values
        if net.arch != model.arch:
            raise CheckpointError(f"{path}: a P3M-Net {net.title} checkpoint, not {model.name}",
                                  f"install it under its own name: p3m models download p3mnet-{net.arch} --from FILE")
        return f"P3M-Net {net.title}: its exact keys and shapes, float dtypes, finite values"
    return _check_backbone(model, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_backbone(model: ModelEntry, path: Path) -> str:
    """R34: exactly the encoder's tensors (the classifier and BN counters optional), as `p3m train --pretrained`
    reads them. ViTAE-S / Swin-T: every tensor the encoder shares with the file has the encoder's shape and the
    shared ones cover most of it; the official files were not available to pin their exact layout."""
    import torch

    from model.p3mnet.checkpoint import _read_safetensors, _read_torch
    from model.p3mnet.safety import check_tensor_values
    from model.p3mnet.variants import build_network

    state = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)
    for wrapper in BACKBONE_WRAPPERS:
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    state = {_strip(k): v for k, v in state.items()}
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: {len(not_tensors)} entries are not tensors (e.g. {not_tensors[0]})",
                              "expected a state_dict of an ImageNet backbone")
    with torch.device("meta"):
        encoder = build_network(model.arch).encoder.state_dict()
    shared = [k for k in state if k in encoder]
    wrong = [k for k in shared if state[k].shape != encoder[k].shape]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{path}: {len(wrong)} tensor(s) have the wrong shape for {model.name} "
                              f"(e.g. {k} {list(state[k].shape)} != {list(encoder[k].shape)})",
                              f"pass the ImageNet {model.arch} backbone")
    if model.arch == "r34":
        optional = ("fc.", "num_batches_tracked")
        missing = [k for k in encoder if k not in state and not any(o in k for o in optional)]
        unexpected = [k for k in state if k not in encoder]
        if missing or unexpected:
            raise CheckpointError(f"{path}: not a ResNet-34 backbone: {len(missing)} missing (e.g. "
                                  f"{', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. "
                                  f"{', '.join(unexpected[:3]) or '-'})",
                                  "pass r34mp_pretrained_imagenet.pth.tar or torchvision's resnet34 weights")
    total = sum(t.numel() for t in encoder.values())
    covered = sum(encoder[k].numel() for k in shared)
    if covered < MIN_BACKBONE_COVER * total:
        raise CheckpointError(f"{path}: supplies {covered / total:.0%} of the {model.arch} encoder's weights "
                              f"({len(shared)} of {len(encoder)} tensors)", f"pass the ImageNet {model.arch} backbone")
    check_tensor_values({k: state[k] for k in shared}, encoder, str(path))
    return f"ImageNet {model.arch} backbone, {len(shared)} of the encoder's {len(encoder)} tensors, finite floats"


def _strip(key: str) -> str:
    for prefix in BACKBONE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key

