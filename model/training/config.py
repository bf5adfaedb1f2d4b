"""The training configuration: the official setting as defaults, a YAML file, then overrides."""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from model.settings import PRESETS_DIR, ConfigError, Settings

log = logging.getLogger(__name__)
STRATEGIES = ("resize", "hybrid")
ARCHS = ("r34", "vitae-s", "swin-t")  # model/p3mnet/variants.py (torch-free here)
_MINIMUM: dict[str, float] = {
    "epochs": 1, "batch_size": 1, "workers": 0, "out_size": 32, "save_every": 1, "keep_checkpoints": 0,
    "val_every": 0, "steps_per_epoch": 1, "val_max_images": 1,
}


class TrainConfigError(ConfigError):
    """A training configuration field is unknown or has an invalid value."""


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Everything a training run needs; defaults are the official setting (scripts/train.sh, core/config.py)."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {"device": ("auto", "cpu", "cuda"), "val_strategy": STRATEGIES,
                                                       "arch": ARCHS}
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {k: (v, math.inf) for k, v in _MINIMUM.items()}
    PRESETS_DIR: ClassVar[Path | None] = PRESETS_DIR
    COMMAND: ClassVar[str | None] = "train"
    Error: ClassVar[type[ConfigError]] = TrainConfigError

    train_dir: str | None = None       # P3M-10k root or its train/, or a folder with images/ + alphas/
    val_dir: str | None = None         # held-out set (P3M-500-P root, or images/ + alphas/); None: no validation
    out_dir: str = "runs/p3m10k"       # checkpoints, log.jsonl, config.yaml
    epochs: int = 150
    batch_size: int = 8
    lr: float = 1e-5                   # Adam
    workers: int = 4                   # DataLoader worker processes
    out_size: int = 512                # training crops are resized to out_size²
    crop_sizes: tuple[int, ...] = (512, 768, 1024)
    trimap_kernel: tuple[int, ...] = (15, 30)  # online trimap: elliptical kernel size range at the source size
    seed: int = 0                      # model init, data order and augmentation
    device: str = "auto"               # auto | cpu | cuda
    amp: bool = True                   # float16 autocast + GradScaler on CUDA (always off on CPU)
    arch: str = "r34"                  # the P3M-Net variant: r34 | vitae-s | swin-t
    pretrained: str | None = None      # ImageNet backbone of that variant for the encoder (else random init)
    init_weights: str | None = None    # start from a P3M-Net checkpoint instead (fine-tuning)
    resume: str | None = None          # a checkpoint written by `p3m train` (or its folder: the latest)
    steps_per_epoch: int | None = None  # cap on batches per epoch (quick runs); None: the whole set
    save_every: int = 1                # epochs between checkpoints (the last epoch is always saved)
    keep_checkpoints: int = 3          # newest checkpoints kept; 0 keeps all
    val_every: int = 1                 # epochs between validations; 0: never
    val_strategy: str = "resize"       # resize | hybrid (SPEC §7)
    val_max_images: int | None = None  # validate on the first N images only

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.out_size % 32:
            raise TrainConfigError(f"out_size: {self.out_size} is not a multiple of 32",
                                   "P3M-Net needs sizes in steps of 32, e.g. 512")
        if len(self.trimap_kernel) != 2 or not 1 <= self.trimap_kernel[0] <= self.trimap_kernel[1]:
            raise TrainConfigError(f"trimap_kernel: {list(self.trimap_kernel)} is not a range [min, max]",
                                   "give two sizes, e.g. [15, 30]")
        if not self.crop_sizes or min(self.crop_sizes) < 32:
            raise TrainConfigError(f"crop_sizes: {list(self.crop_sizes)} must be sizes of at least 32",
                                   "e.g. [512, 768, 1024]")
        if not self.lr > 0:
            raise TrainConfigError(f"lr: {self.lr} must be positive", "the official setting is 1.0e-5")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the YAML file (a path or a preset name in `configs/`), then the non-None overrides."""
    return TrainConfig.load(path, **overrides)
