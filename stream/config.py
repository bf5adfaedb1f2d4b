"""One typed configuration for a cut-out job: defaults, YAML presets in `configs/`, CLI overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from model.errors import P3MError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"

_CHOICES: dict[str, tuple[str, ...]] = {
    "device": ("auto", "cpu", "cuda"),
    "hw_codecs": ("auto", "off"),
    "upsample": ("guided", "bilinear"),
    "preset": ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "infer_size": (64, 4096),
    "smoothing_strength": (0.0, 1.0),
    "crf": (0, 51),
    "queue_size": (1, 64),
    "batch": (1, 64),
}


class ConfigError(P3MError):
    """A configuration field is unknown or has an invalid value."""


@dataclass(frozen=True)
class CutoutConfig:
    """Everything a cut-out job needs besides its input and output paths."""

    model: str = "auto"               # auto | p3mnet | mediapipe | a registered test model
    weights: str | None = None        # P3M-Net checkpoint (.pth or .safetensors)
    device: str = "auto"              # auto | cpu | cuda
    infer_size: int = 512             # long side the model sees; a multiple of 32
    upsample: str = "guided"          # guided (edge-aware) | bilinear
    smoothing: bool = True            # temporal alpha smoothing on/off
    smoothing_strength: float = 0.5   # 0 = follow each frame, 1 = strongest blend on uncertain pixels
    background: str = "green"         # green | #RRGGBB | blur[:STRENGTH] | transparent | image or video path
    crf: int = 18                     # H.264 quality (lower is better)
    preset: str = "veryfast"          # x264 speed preset
    alpha_out: str | None = None      # also write the matte as a grayscale video here
    queue_size: int = 4               # frames each bounded queue holds (offline mode blocks when full)
    batch: int = 1                    # frames matted together (offline only; 8 suits a GPU)
    hw_codecs: str = "auto"           # auto: NVENC/NVDEC where they really work here, else CPU | off

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name), f.type)
        if self.infer_size % 32:
            raise ConfigError(f"infer_size: {self.infer_size} is not a multiple of 32",
                              "P3M-Net needs sizes in steps of 32, e.g. 384, 512 or 768")

    def replace(self, **changes: Any) -> "CutoutConfig":
        """A copy with some fields changed (validated like the original)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}", f"valid options: {_field_names()}")
        return dataclasses.replace(self, **changes)


def load_config(path: str | Path | None = None, **overrides: Any) -> CutoutConfig:
    """Defaults, then the YAML file (a path or a preset name from `configs/`), then the non-None overrides."""
    config = CutoutConfig()
    if path is not None:
        try:
            config = config.replace(**read_yaml(path))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e.message}", e.hint) from None
    return config.replace(**{k: v for k, v in overrides.items() if v is not None})


def read_yaml(path: str | Path) -> Mapping[str, Any]:
    """Read a preset: a file path, or the name of one in `configs/` (e.g. `offline_cutout`)."""
    p = Path(path)
    if not p.exists() and (PRESETS_DIR / f"{path}.yaml").exists():
        p = PRESETS_DIR / f"{path}.yaml"
    if not p.is_file():
        presets = ", ".join(preset_names())
        raise ConfigError(f"config file not found: {path}", f"give a YAML file or a preset name ({presets})")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})", "fix the file's syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option: value", f"valid options: {_field_names()}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def preset_names() -> list[str]:
    """The pipeline presets in `configs/` (training configs, `train_*.yaml`, are not pipeline presets)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if not p.stem.startswith("train_"))


def _field_names() -> str:
    return ", ".join(f.name for f in fields(CutoutConfig))


def _check_field(name: str, value: Any, type_: Any) -> None:
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str}
    base = str(type_).split(" | ")[0]
    optional = "None" in str(type_)
    if value is None and optional:
        return
    ok = isinstance(value, expected[base]) and not (base != "bool" and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{name}: expected {base}, got {value!r}", f"set {name} to a {base} value")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(_CHOICES[name])}", f"pick one for {name}")
    if name in _RANGES:
        lo, hi = _RANGES[name]
        if not lo <= value <= hi:
            raise ConfigError(f"{name}: {value} is outside [{lo:g}, {hi:g}]", f"choose {name} in that range")
