"""One typed configuration for a cut-out job: defaults, YAML presets in `configs/`, CLI overrides."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from model.matters import PRECISIONS
from model.settings import ConfigError, Settings

__all__ = ["ConfigError", "CutoutConfig", "PRESETS_DIR", "load_config", "preset_names"]

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class CutoutConfig(Settings):
    """Everything a cut-out job needs besides its input and output paths."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "blur_style": ("pixelate", "gaussian"),
        "face_model": ("short", "full"),
        "device": ("auto", "cpu", "cuda"),
        "hw_codecs": ("auto", "all", "off"),
        "precision": PRECISIONS,
        "upsample": ("guided", "bilinear"),
        "preset": ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
    }
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "infer_size": (64, 4096),
        "smoothing_strength": (0.0, 1.0),
        "crf": (0, 51),
        "queue_size": (1, 64),
        "batch": (1, 64),
    }
    PRESETS_DIR: ClassVar[Path | None] = PRESETS_DIR

    model: str = "auto"               # auto | p3mnet | mediapipe | a registered test model
    weights: str | None = None        # P3M-Net checkpoint (.pth or .safetensors)
    device: str = "auto"              # auto | cpu | cuda
    precision: str = "mixed"          # P3M-Net, CUDA: mixed (within 1/255 of fp32) | fp16 (2.5× faster) | bf16 | fp32
    infer_size: int = 512             # long side the model sees; a multiple of 32
    upsample: str = "guided"          # guided (edge-aware) | bilinear
    smoothing: bool = True            # temporal alpha smoothing on/off
    smoothing_strength: float = 0.5   # 0 = follow each frame, 1 = strongest blend on uncertain pixels
    background: str = "green"         # green | #RRGGBB | blur[:STRENGTH] | transparent | image or video path
    crf: int = 18                     # H.264 quality (lower is better)
    preset: str = "veryfast"          # x264 speed preset
    alpha_out: str | None = None      # also write the matte as a grayscale video here
    audio: bool = True                # copy the input's audio streams (off: the output has none)
    queue_size: int = 4               # frames a bounded queue holds (offline: blocks when full; two batches
                                      # beside a batching stage)
    blur_faces: bool = False          # pixelate or blur every face in the output (stream/faces.py)
    blur_style: str = "pixelate"      # pixelate | gaussian
    face_model: str = "short"         # short (webcam distance) | full (up to ~5 m)
    batch: int | None = None          # frames matted together offline; None: the model's (Matter.offline_batch)
    hw_codecs: str = "auto"           # auto: NVENC where it works, CPU decoding | all: NVDEC too | off

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.infer_size % 32:
            raise ConfigError(f"infer_size: {self.infer_size} is not a multiple of 32",
                              "P3M-Net needs sizes in steps of 32, e.g. 384, 512 or 768")

    @classmethod
    def presets(cls) -> list[str]:
        """The pipeline presets in `configs/` (training configs, `train_*.yaml`, are not pipeline presets)."""
        return [name for name in super().presets() if not name.startswith("train_")]


def load_config(path: str | Path | None = None, **overrides: Any) -> CutoutConfig:
    """Defaults, then the YAML file (a path or a preset name from `configs/`), then the non-None overrides."""
    return CutoutConfig.load(path, **overrides)


def preset_names() -> list[str]:
    """The pipeline presets in `configs/`."""
    return CutoutConfig.presets()
