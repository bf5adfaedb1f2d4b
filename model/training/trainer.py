"""Training P3M-Net R34 as the official MM code does (SPEC §9), plus resume, validation and mixed precision.

Checkpoints are official files: `OUT/ckpt_epoch{N}.pth` = `{'state_dict': ...}` with the 713 official keys
(`save_official`), so `load_p3mnet` and the official test code read them. The training state that resume
needs (Adam moments, AMP scale, epoch, step, config) goes beside it in `ckpt_epoch{N}.train.pth`, which
nothing else reads; this keeps the weights file small (158 MB, not 470) and strictly official.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from model.errors import P3MError
from model.evaluation.evaluate import EvalReport, evaluate_folders
from model.evaluation.metrics import mad, mse, sad
from model.imageio import read_gray, read_rgb
from model.p3mnet.checkpoint import CheckpointError, _read_torch, load_p3mnet, save_official
from model.p3mnet.inference import infer_image
from model.p3mnet.network import P3MNet
from model.runtime.devices import resolve_device
from model.training.backbones import load_transformer_backbone
from model.training.config import STRATEGIES, TrainConfig, TrainConfigError
from model.training.data import (
    Augment,
    MattingDataset,
    Sample,
    denormalize,
    files_by_stem,
    find_layout,
    list_samples,
    make_loader,
)
from model.training.losses import p3m_loss

log = logging.getLogger(__name__)
RESUME_FORMAT = "p3m-stream-train-state-1"
CHECKPOINT_NAME = re.compile(r"^ckpt_epoch(\d+)\.pth$")
LOSS_NAMES = ("loss", "global", "local", "fusion_alpha", "fusion_comp")


def load_imagenet_encoder(net: P3MNet, path: str | Path) -> None:
    """Initialise the encoder from an ImageNet ResNet-34: torchvision's `resnet34` state_dict or the official
    `r34mp_pretrained_imagenet.pth.tar` (keys conv1/bn1/layer1-4/fc). The shapes are those of our
    ResNet-34-MP; only the strides differ, which have no weights. `fc` and BN counters are optional."""
    state = _read_torch(Path(path))
    state = {k[len("resnet."):] if k.startswith("resnet.") else k: v for k, v in state.items()}
    ours = net.encoder.state_dict()
    unexpected = sorted(k for k in state if k not in ours)
    missing = sorted(k for k in ours if k not in state and not k.startswith("fc.")
                     and not k.endswith("num_batches_tracked"))
    if unexpected or missing:
        parts = [f"{len(x)} {what} ({', '.join(x[:5])}{', ...' if len(x) > 5 else ''})"
                 for x, what in ((missing, "missing"), (unexpected, "unexpected")) if x]
        raise CheckpointError(f"{path}: not a ResNet-34 state_dict: " + "; ".join(parts),
                              "pass torchvision's resnet34 weights or the official r34mp_pretrained_imagenet.pth.tar")
    wrong = [k for k in state if state[k].shape != ours[k].shape]
    if wrong:
        raise CheckpointError(f"{path}: {len(wrong)} tensor(s) have the wrong shape for ResNet-34 "
                              f"(e.g. {wrong[0]} {list(state[wrong[0]].shape)} != {list(ours[wrong[0]].shape)})",
                              "is it a ResNet-18/50? P3M-Net R34 needs ResNet-34 weights")
    net.encoder.load_state_dict(state, strict=False)


@dataclass
class TrainResult:
    """What a run did: the trained net (in train mode), per-step losses, per-epoch records, last checkpoint."""

    net: P3MNet
    start_epoch: int
    end_epoch: int
    steps: int
    history: list[dict[str, float]]
    epochs: list[dict[str, Any]]
    last_checkpoint: Path | None

    def summary(self) -> str:
        if self.end_epoch < self.start_epoch:
            return f"nothing to do: already trained to epoch {self.end_epoch}"
        last = self.epochs[-1] if self.epochs else {}
        val = last.get("val")
        val_text = f", val SAD {val['SAD']:.4f} MSE {val['MSE']:.6f} MAD {val['MAD']:.6f}" if val else ""
        return (f"trained epochs {self.start_epoch}-{self.end_epoch} ({self.steps} steps in all), "
                f"last loss {last.get('loss', float('nan')):.4f}{val_text} -> {self.last_checkpoint}")


class Trainer:
    """One training run: the net, Adam, the AMP scaler, the data; `fit` runs the epochs, `step` one batch."""

    def __init__(self, config: TrainConfig, *, progress: bool = True,
                 echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.progress = progress
        self.echo = echo or log.info
        self.device = torch.device(resolve_device(config.device))
        self.amp = config.amp and self.device.type == "cuda"
        # The data first: a wrong path should fail in a second, not after loading weights.
        self.train_set = None
        if config.train_dir is not None:
            augment = Augment(config.out_size, config.crop_sizes, config.trimap_kernel)  # type: ignore[arg-type]
            with _field("train_dir"):
                self.train_set = MattingDataset.from_folder(config.train_dir, augment, config.seed)
        self.val_samples: list[Sample] = []
        if config.val_dir is not None and config.val_every:
            with _field("val_dir"):
                self.val_samples = list_samples(find_layout(config.val_dir))[: config.val_max_images]

        torch.manual_seed(config.seed)
        self.net = P3MNet(config.arch)
        self.start_epoch, self.steps = 1, 0
        resume = resolve_resume(config.resume) if config.resume else None
        if resume is None:
            self._init_weights()
        self.net.to(self.device).train()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        if resume is not None:
            self._resume(resume)

    def step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on a batch from `MattingDataset`; the losses as floats."""
        self.net.train()
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.net(b["image"])
        terms = p3m_loss(out, b["alpha"], b["trimap"], denormalize(b["image"]), b["fg"], b["bg"])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.steps += 1
        values = dict(zip(LOSS_NAMES, torch.stack([t.detach().float() for t in terms]).tolist()))
        if not math.isfinite(values["loss"]) and not self.amp:
            raise P3MError(f"the loss became {values['loss']} at step {self.steps}",
                           "lower lr, or check the data (alphas must be 0-255 grayscale)")
        return values

    def train_epoch(self, epoch: int) -> list[dict[str, float]]:
        """One pass over the training set (at most `steps_per_epoch` batches); the per-step losses."""
        if self.train_set is None:
            raise TrainConfigError("train_dir: not set", "set train_dir in the config or pass --train-dir")
        cfg = self.config
        loader = make_loader(self.train_set, cfg.batch_size, cfg.workers, epoch, pin_memory=self.device.type == "cuda")
        total = len(loader) if cfg.steps_per_epoch is None else min(len(loader), cfg.steps_per_epoch)
        history: list[dict[str, float]] = []
        with tqdm(total=total, desc=f"epoch {epoch}/{cfg.epochs}", disable=not self.progress, leave=False,
                  dynamic_ncols=True) as bar:
            for i, batch in enumerate(loader):
                if i == total:
                    break
                history.append(self.step(batch))
                means = {k: np.mean([h[k] for h in history]) for k in LOSS_NAMES}
                bar.set_postfix(loss=f"{means['loss']:.4f}", glob=f"{means['global']:.3f}",
                                local=f"{means['local']:.3f}", fusion=f"{means['fusion_alpha']:.3f}",
                                comp=f"{means['fusion_comp']:.3f}")
                bar.update()
        return history

    def validate(self) -> dict[str, float] | None:
        """Mean SAD/MSE/MAD of `infer_image` (val_strategy) on the validation images; None without them."""
        if not self.val_samples:
            return None
        return validate(self.net, self.val_samples, self.config.val_strategy)

    def fit(self) -> TrainResult:
        """Train from `start_epoch` to `epochs`: validate and save as configured, log to OUT/log.jsonl."""
        cfg = self.config
        out = Path(cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        history: list[dict[str, float]] = []
        records: list[dict[str, Any]] = []
        last: Path | None = None
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            t0 = time.perf_counter()
            steps = self.train_epoch(epoch)
            history += steps
            record: dict[str, Any] = {"epoch": epoch, "step": self.steps, "seconds": round(time.perf_counter() - t0, 2)}
            record.update({k: float(np.mean([s[k] for s in steps])) for k in LOSS_NAMES} if steps else {})
            if cfg.val_every and (epoch % cfg.val_every == 0 or epoch == cfg.epochs):
                record["val"] = self.validate()
            if epoch % cfg.save_every == 0 or epoch == cfg.epochs:
                last = self.save(epoch)
                record["checkpoint"] = str(last)
            records.append(record)
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            self.echo(_epoch_line(record, cfg.epochs))
        return TrainResult(self.net, self.start_epoch, cfg.epochs if records else self.start_epoch - 1,
                           self.steps, history, records, last)

    def save(self, epoch: int) -> Path:
        """Write OUT/ckpt_epoch{N}.pth (official) and its .train.pth sidecar; prune old ones."""
        out = Path(self.config.out_dir)
        path = out / f"ckpt_epoch{epoch}.pth"
        state = {
            "format": RESUME_FORMAT,
            "epoch": epoch,
            "step": self.steps,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "config": self.config.to_dict(),
        }
        _atomic(path, lambda tmp: save_official(self.net, tmp))
        _atomic(sidecar_path(path), lambda tmp: torch.save(state, tmp))
        if self.config.keep_checkpoints:
            for old in list_checkpoints(out)[: -self.config.keep_checkpoints]:
                old.unlink(missing_ok=True)
                sidecar_path(old).unlink(missing_ok=True)
        return path

    def _init_weights(self) -> None:
        cfg = self.config
        if cfg.init_weights is not None:
            with _field("init_weights"):
                start = load_p3mnet(cfg.init_weights)
                if start.arch != self.net.arch:
                    raise CheckpointError(f"{cfg.init_weights} holds P3M-Net {start.arch}, not {self.net.arch}",
                                          f"train with arch: {start.arch}, or give {self.net.arch} weights")
                self.net.load_state_dict(start.state_dict())
            self.echo(f"init: P3M-Net weights from {cfg.init_weights}")
        elif cfg.pretrained is not None:
            if not Path(cfg.pretrained).is_file():
                raise P3MError(f"pretrained: {cfg.pretrained} not found",
                               "download r34mp_pretrained_imagenet.pth.tar (see README) or torchvision's resnet34 "
                               "weights, or set pretrained to null for a random encoder")
            with _field("pretrained"):
                if self.net.arch == "r34":
                    load_imagenet_encoder(self.net, cfg.pretrained)
                else:
                    load_transformer_backbone(self.net, cfg.pretrained, self.net.title)
            self.echo(f"init: ImageNet encoder from {cfg.pretrained}")
        else:
            log.warning("no pretrained encoder: P3M-Net starts from random weights, which trains far worse "
                        "(set pretrained: to an ImageNet ResNet-34 state_dict)")

    def _resume(self, path: Path) -> None:
        state = read_train_state(path)
        self.net.load_state_dict(load_p3mnet(path).state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr  # the config in force wins over the saved one
        if self.amp and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.steps = int(state["epoch"]) + 1, int(state["step"])
        self.echo(f"resume: {path} (epoch {state['epoch']}, step {state['step']})")


def train(config: TrainConfig, *, progress: bool = True, echo: Callable[[str], None] | None = None) -> TrainResult:
    """Run `config` to the end (see Trainer.fit)."""
    if config.train_dir is None:
        raise TrainConfigError("train_dir: not set", "set train_dir in the config or pass --train-dir")
    return Trainer(config, progress=progress, echo=echo).fit()


def sidecar_path(checkpoint: str | Path) -> Path:
    """ckpt_epochN.pth → ckpt_epochN.train.pth, the resume state beside an official checkpoint."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.train.pth")


def list_checkpoints(folder: str | Path) -> list[Path]:
    """The ckpt_epochN.pth files in `folder`, oldest epoch first."""
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir() if (m := CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_resume(path: str | Path) -> Path:
    """A checkpoint file, or a folder (its newest checkpoint that has a resume sidecar)."""
    path = Path(path)
    if path.is_dir():
        candidates = [p for p in list_checkpoints(path) if sidecar_path(p).is_file()]
        if not candidates:
            raise P3MError(f"resume: no checkpoint with training state in {path}",
                           "expected ckpt_epochN.pth + ckpt_epochN.train.pth written by p3m train")
        return candidates[-1]
    if not path.is_file():
        raise P3MError(f"resume: checkpoint not found: {path}", "check the path")
    return path


def read_train_state(checkpoint: str | Path) -> dict[str, Any]:
    """The resume sidecar of `checkpoint` (weights-only load)."""
    side = sidecar_path(checkpoint)
    if not side.is_file():
        raise P3MError(f"resume: {checkpoint} has no training state beside it ({side.name})",
                       "resume needs a checkpoint written by p3m train; to start from weights only, use init_weights")
    try:
        state = torch.load(side, map_location="cpu", weights_only=True)
    except Exception as e:
        raise P3MError(f"resume: cannot read {side} ({str(e).splitlines()[0][:120]})",
                       "the file is truncated or not a p3m train state") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise P3MError(f"resume: {side} is not a p3m train state", f"expected format {RESUME_FORMAT}")
    return state


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary name, then rename: an interrupted save never leaves a truncated checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def validate(net: P3MNet, samples: list[Sample], strategy: str = "resize") -> dict[str, float]:
    """Mean SAD, MSE and MAD (SPEC §8, whole image) of `infer_image` on the samples; the net's mode is kept."""
    was_training = net.training
    net.eval()
    try:
        scores = []
        for s in samples:
            pred = infer_image(net, read_rgb(s.image), strategy)  # type: ignore[arg-type]
            alpha = read_gray(s.alpha).astype(np.float32) / 255.0
            scores.append((sad(pred, alpha), mse(pred, alpha), mad(pred, alpha)))
    finally:
        net.train(was_training)
    mean = np.mean(scores, axis=0)
    return {"SAD": float(mean[0]), "MSE": float(mean[1]), "MAD": float(mean[2]), "images": len(samples)}


def evaluate_weights(
    weights: str | Path,
    dataset_dir: str | Path,
    strategy: str,
    out_dir: str | Path,
    *,
    images: str | Path | None = None,
    trimap_dir: str | Path | None = None,
    device: str = "auto",
    fast: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> EvalReport:
    """Matte a data set with a checkpoint, write OUT/<stem>.png (trunc(255·alpha), as the official test),
    and score them with `model.evaluate.evaluate_folders`; returns its EvalReport.

    `dataset_dir`: a P3M-500-P/NP root or a folder with images/ + alphas/ (its trimap/ is used when
    present); `images`: take the images from here instead, `dataset_dir` then only gives the GT.
    """
    if strategy not in STRATEGIES:
        raise P3MError(f"unknown strategy {strategy!r}", "use resize or hybrid")
    if images is not None:
        layout = find_layout(dataset_dir) if _has_layout(dataset_dir) else None
        mask_dir = layout.alphas if layout else Path(dataset_dir)
        image_dir = Path(images)
        if not image_dir.is_dir():
            raise P3MError(f"image folder not found: {image_dir}", "check the path")
        trimaps = trimap_dir or (layout.trimaps if layout else None)
    else:
        layout = find_layout(dataset_dir)
        image_dir, mask_dir, trimaps = layout.images, layout.alphas, trimap_dir or layout.trimaps
    paths = sorted(files_by_stem(image_dir).items())
    if not paths:
        raise P3MError(f"no images in {image_dir}", "point it at the folder of test images")
    net = load_p3mnet(weights, device=resolve_device(device))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, (stem, path) in enumerate(paths):
        if progress is not None:
            progress(i, len(paths), stem)
        alpha = infer_image(net, read_rgb(path), strategy)  # type: ignore[arg-type]
        if not cv2.imwrite(str(out / f"{stem}.png"), (np.clip(alpha, 0, 1) * 255).astype(np.uint8)):
            raise P3MError(f"cannot write {out / (stem + '.png')}", "check that the folder is writable")
    return evaluate_folders(out, mask_dir, trimaps, fast=fast)


@contextmanager
def _field(name: str) -> Iterator[None]:
    """Prefix a user error with the config field it came from."""
    try:
        yield
    except P3MError as e:
        raise type(e)(f"{name}: {e.message}", e.hint) from None


def _has_layout(folder: str | Path) -> bool:
    try:
        find_layout(folder)
        return True
    except P3MError:
        return False


def _epoch_line(record: Mapping[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"step {record['step']}"]
    if "loss" in record:
        parts.append("loss {loss:.4f} (global {global:.4f} local {local:.4f} fusion {fusion_alpha:.4f} "
                     "comp {fusion_comp:.4f})".format(**record))
    if record.get("val"):
        parts.append("val SAD {SAD:.4f} MSE {MSE:.6f} MAD {MAD:.6f}".format(**record["val"]))
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)
