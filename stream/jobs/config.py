"""One typed configuration for a cut-out job: defaults, YAML presets in `configs/`, CLI overrides."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from model.errors import P3MError
from model.faces import DEFAULT_STYLE, FACE_FINDERS, STYLES
from model.matte_tuning import SPILL, MatteTuning
from model.runtime.precision import PRECISIONS
from model.settings import PRESETS_DIR, ConfigError, Settings
from model.subjects import SUBJECT_MODES
from stream.sinks.encoding import ODD_SIZES
from stream.sources.camera import BACKENDS, PIXEL_FORMATS, parse_size
from stream.sources.files import Span
from stream.stages.guided_filter import UPSAMPLERS

__all__ = ["ConfigError", "CutoutConfig", "load_config", "preset_names"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CutoutConfig(Settings):
    """Everything a cut-out job needs besides its input and output paths."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "blur_style": STYLES,
        "face_model": FACE_FINDERS,
        "blur_faces": ("all", "others"),
        "device": ("auto", "cpu", "cuda"),
        "hw_codecs": ("auto", "all", "off"),
        "precision": PRECISIONS,
        "upsample": UPSAMPLERS,
        "subjects": ("auto", *SUBJECT_MODES, "off"),
        "spill": SPILL,
        "odd_size": ODD_SIZES,
        "preset": ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
    }
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "infer_size": (64, 4096),
        "smoothing_strength": (0.0, 1.0),
        "crf": (0, 51),
        "queue_size": (1, 64),
        "batch": (1, 64),
        "frames": (1, 10**9),
        "threshold": (0.0, 0.99),
        "erode": (0, 100),
        "dilate": (0, 100),
        "feather": (0, 100),
    }
    PRESETS_DIR: ClassVar[Path | None] = PRESETS_DIR
    COMMAND: ClassVar[str | None] = "cutout"
    NOT_HERE: ClassVar[tuple[str, ...]] = ()    # fields this command has but refuses (another command's own)

    model: str = "auto"               # auto | p3mnet | mediapipe | a registered test model
    weights: str | None = None        # P3M-Net checkpoint (.pth or .safetensors)
    device: str = "auto"              # auto | cpu | cuda
    precision: str = "mixed"          # P3M-Net, CUDA: mixed (within 1/255 of fp32) | fp16 (fastest) | bf16 | fp32
    infer_size: int = 512             # long side the model sees; a multiple of the model's step (P3M-Net: 32)
    upsample: str = "guided"          # guided (edge-aware) | bilinear
    subjects: str = "auto"            # main (regions connected to the subject) | all (regions that persist) |
                                      # off (the matte as it comes) | auto: main for the bundled model, else off
    smoothing: bool = True            # temporal alpha smoothing on/off
    smoothing_strength: float = 0.5   # 0 = follow each frame, 1 = strongest blend on uncertain pixels
    background: str = "green"         # green | #RRGGBB | blur[:STRENGTH] | transparent | image or video path
    foreground_estimation: bool = True   # the person's own colours at partial edges (no halo of the old background)
    crf: int = 18                     # H.264 quality (lower is better)
    preset: str = "veryfast"          # x264 speed preset
    odd_size: str = "pad"             # H.264 4:2:0 needs even sizes: pad (edge repeated) | crop one row/column
    alpha_out: str | None = None      # also write the matte as a grayscale video here
    matte: str | None = None          # take the alpha from this grayscale video or image sequence (no model)
    refine: bool = False              # closed-form matting at the matte's edges (a quality mode, ~1 s a frame)
    audio: bool = True                # copy the input's audio streams (off: the output has none)
    queue_size: int = 4               # frames a bounded queue holds (offline: blocks when full; two batches
                                      # beside a batching stage)
    blur_faces: str | None = None     # all | others (the subject's face kept) | None: off; true means all
    blur_style: str = DEFAULT_STYLE   # fill | pixelate | gaussian (stream/stages/faces.py)
    face_model: str = "both"          # both | short (webcam distance) | full (up to ~5 m)
    batch: int | None = None          # frames matted together offline; None: the model's (Matter.offline_batch)
    hw_codecs: str = "auto"           # auto: NVENC where it works, CPU decoding | all: NVDEC too | off
    start: float = 0.0                # seconds of the input skipped (frame-accurate; the audio is cut alike)
    duration: float | None = None     # seconds of the input read from `start` (None: to the end)
    frames: int | None = None         # or: frames read from `start` (not both)
    threshold: float = 0.0            # alpha below it -> 0, above it stretched to [0, 1] (edges stay soft)
    erode: int = 0                    # pixels the matte shrinks by
    dilate: int = 0                   # pixels it grows by (after erode: both together remove specks)
    feather: int = 0                  # pixels each side of an edge it is softened over
    spill: str = "off"                # green | blue: that colour's spill taken out of the person's colours

    def __post_init__(self) -> None:
        if isinstance(self.blur_faces, bool):     # YAML and older callers: true / false
            object.__setattr__(self, "blur_faces", "all" if self.blur_faces else None)
        if self.subjects is False:                # YAML reads a bare `off` as false
            object.__setattr__(self, "subjects", "off")
        super().__post_init__()
        if self.start < 0:
            raise ConfigError(f"start: {self.start:g} s is before the video begins",
                              "give start in seconds, 0 or more (or [HH:]MM:SS on the command line)")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"duration: {self.duration:g} s is not a length",
                              "give duration in seconds, above 0 (or [HH:]MM:SS on the command line)")
        if self.duration is not None and self.frames is not None:
            raise ConfigError("duration and frames both given: they say the same thing twice",
                              "give --duration TIME or --frames N, not both")

    @property
    def tuning(self) -> MatteTuning:
        """What is done to each full-resolution alpha before compositing."""
        return MatteTuning(self.threshold, self.erode, self.dilate, self.feather)

    @property
    def span(self) -> Span:
        """The piece of the input the job reads."""
        return Span(self.start, self.duration, self.frames)

    @classmethod
    def preset_values(cls, values: dict[str, Any], command: Any) -> dict[str, Any]:
        """A preset of the other video command (`command: live` in `p3m cutout`, or the reverse) gives the fields
        both commands take; its own ones are ignored (logged at debug). A field neither knows is still refused."""
        other = _VIDEO_COMMANDS.get(command) if isinstance(command, str) else None
        if other is None or command == cls.COMMAND:
            return super().preset_values(values, command)
        ours = {f.name for f in fields(cls)} - set(cls.NOT_HERE)
        theirs = {f.name for f in fields(other)} - ours
        ignored = sorted(set(values) & theirs)
        if ignored:
            log.debug("a %s preset: %s ignored (not %s options)", command, ", ".join(ignored), cls.COMMAND)
        return {k: v for k, v in values.items() if k not in theirs}


def load_config(path: str | Path | None = None, **overrides: Any) -> CutoutConfig:
    """Defaults, then the YAML file (a path or a preset name from `configs/`), then the non-None overrides."""
    return CutoutConfig.load(path, **overrides)


def preset_names() -> list[str]:
    """The pipeline presets in `configs/`."""
    return CutoutConfig.presets()


LIVE_PRESET = "virtual_background"


@dataclass(frozen=True)
class LiveConfig(CutoutConfig):
    """A cut-out config plus the live job's ends: camera, virtual camera, preview, stream, recording, faces."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **CutoutConfig.CHOICES, "camera_format": PIXEL_FORMATS, "camera_backend": BACKENDS}
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        **CutoutConfig.RANGES, "camera_fps": (1, 240), "queue_size": (1, 2), "alpha_wait_ms": (0, 1000),
        "camera_timeout": (0, 86400), "stream_bitrate": (100, 100_000)}
    COMMAND: ClassVar[str | None] = "live"
    # Offline only: a camera has no matte file, nor a second a frame, nor a piece to cut.
    NOT_HERE: ClassVar[tuple[str, ...]] = ("matte", "refine", "start", "duration", "frames")

    queue_size: int = 2                  # live queues hold 1-2 frames and drop the stalest
    camera_size: str | None = None       # WIDTHxHEIGHT asked of the camera (scales a file's frames)
    camera_fps: float | None = None      # rate asked of the camera (a file plays at its own)
    camera_format: str | None = None     # mjpeg | yuyv (the camera's default when unset)
    camera_backend: str = "auto"         # auto (PyAV, OpenCV where PyAV lacks the device) | pyav | opencv
    camera_timeout: float = 60.0         # seconds a lost camera is retried before giving up (0: forever)
    virtual_cam: str | None = None       # auto (first free device) | a device; unset: on when no other output
    virtual_cam_backend: str | None = None   # a pyvirtualcam backend (v4l2loopback, obs, unitycapture)
    preview: bool = False                # an OpenCV window (q quits)
    output: str | None = None            # also record to this file (same formats as `p3m cutout`)
    stream_url: str | None = None        # rtmp://… (FLV/H.264), srt:// or tcp:// (MPEG-TS, or WebM+alpha), udp://
    stream_bitrate: int = 2500           # kbit/s for --stream-url
    alpha_wait_ms: float = 40.0          # how long a frame may wait for its own alpha when the model keeps up
                                         # (never longer than the camera's frame interval)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.camera_size is not None:
            try:
                parse_size(self.camera_size)
            except P3MError as e:
                raise ConfigError(f"camera_size: {e.message}", e.hint) from None
        for name in self.NOT_HERE:
            if getattr(self, name):
                raise ConfigError(f"{name}: not a live option",
                                  f"use it with p3m cutout; remove {name} from the preset")

    @property
    def wants_output(self) -> bool:
        """True when some output besides the default virtual camera was asked for."""
        return bool(self.virtual_cam or self.preview or self.output or self.stream_url)


_VIDEO_COMMANDS: dict[str, type[CutoutConfig]] = {"cutout": CutoutConfig, "live": LiveConfig}


def load_live_config(path: str | Path | None = LIVE_PRESET, **overrides: Any) -> LiveConfig:
    """Defaults, then the YAML preset (default `virtual_background`), then the non-None overrides."""
    return LiveConfig.load(path, **overrides)
