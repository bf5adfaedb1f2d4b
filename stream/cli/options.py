"""What `p3m cutout` and `p3m live` share on the command line: the model, matting, output and face options
(declared once here, choices from the config's CHOICES, help naming each command's defaults) and the logging
setup."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from stream.jobs.config import ConfigError, CutoutConfig

F = TypeVar("F", bound=Callable[..., object])
C = TypeVar("C", bound=CutoutConfig)


def command_defaults(config: type[C], preset: str | None = None) -> C:
    """The values a command runs with when no flag is given (its default preset's), for its help texts."""
    try:
        return config.load(preset)
    except ConfigError:        # a broken preset is reported, with its field, when a job loads it; not by --help
        return config()


def model_options(command: F) -> F:
    """--model, --weights, --device and --precision, as both jobs take them."""
    return _with(command, [
        click.option("--model", "-m", default=None, help="auto (default) | p3mnet | mediapipe."),
        click.option("--weights", "-w", default=None, help="P3M-Net checkpoint; implies --model p3mnet under auto."),
        click.option("--device", type=click.Choice(CutoutConfig.CHOICES["device"]), default=None,
                     help="Where P3M-Net runs."),
        click.option("--precision", type=click.Choice(CutoutConfig.CHOICES["precision"]), default=None,
                     help="P3M-Net on CUDA: mixed (default, within 1/255 of float32), fp16 (2.5x faster, not "
                          "within 1/255), bf16, fp32."),
    ])


def matting_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--infer-size, --upsample, --smoothing, --smoothing-strength and --background, as both jobs take them."""
    return lambda command: _with(command, [
        click.option("--infer-size", type=int, default=None,
                     help=f"Long side the model sees (P3M-Net: a multiple of 32; default {defaults.infer_size})."),
        click.option("--upsample", type=click.Choice(defaults.CHOICES["upsample"]), default=None,
                     help="Alpha upsampling: edge-aware guided filter or plain bilinear "
                          f"(default {defaults.upsample})."),
        click.option("--smoothing/--no-smoothing", default=None,
                     help=f"Temporal alpha smoothing (default {'on' if defaults.smoothing else 'off'})."),
        click.option("--smoothing-strength", type=float, default=None,
                     help=f"0..1 (default {defaults.smoothing_strength:g})."),
        click.option("--background", "-b", default=None,
                     help="green | '#RRGGBB' | blur | blur:STRENGTH | an image or video file | transparent (files "
                          f"and streams only); default {defaults.background}."),
    ])


def output_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--alpha-out, --crf and --preset: what both jobs write beside their main output, and how H.264 files are
    encoded."""
    return lambda command: _with(command, [
        click.option("--alpha-out", default=None,
                     help="Also write the matte as a grayscale video (.mp4/.mov, or .mkv lossless)."),
        click.option("--crf", type=int, default=None,
                     help=f"Quality of the H.264 files written, CRF 0-51 (default {defaults.crf})."),
        click.option("--preset", default=None,
                     help=f"x264 preset of the H.264 files written (default {defaults.preset})."),
    ])


def face_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--blur-faces, --blur-style and --face-model, as both jobs take them."""
    return lambda command: _with(command, [
        click.option("--blur-faces/--no-blur-faces", default=None,
                     help="Hide every detected face in the output (privacy): pixelate or blur it."),
        click.option("--blur-style", type=click.Choice(defaults.CHOICES["blur_style"]), default=None,
                     help=f"How faces are hidden (default {defaults.blur_style})."),
        click.option("--face-model", type=click.Choice(defaults.CHOICES["face_model"]), default=None,
                     help="Face detector: short (webcam distance) or full (up to ~5 m); "
                          f"default {defaults.face_model}."),
    ])


def _with(command: F, options: Sequence[Callable[[F], F]]) -> F:
    """`command` with `options` listed in this order in its help."""
    for option in reversed(options):
        command = option(command)
    return command


def setup_logging(quiet: bool) -> None:
    """INFO lines from the pipeline (model, codecs) unless `quiet`; warnings and errors always."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s",
                        force=True)
    logging.getLogger("stream").setLevel(logging.WARNING if quiet else logging.INFO)
