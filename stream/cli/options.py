"""What `p3m cutout` and `p3m live` share on the command line: the model options and the logging setup."""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

import click

from stream.jobs.config import CutoutConfig

F = TypeVar("F", bound=Callable[..., object])


def model_options(command: F) -> F:
    """--model, --weights, --device and --precision, as both jobs take them."""
    for option in reversed([
        click.option("--model", "-m", default=None, help="auto (default) | p3mnet | mediapipe."),
        click.option("--weights", "-w", default=None, help="P3M-Net checkpoint; implies --model p3mnet under auto."),
        click.option("--device", type=click.Choice(CutoutConfig.CHOICES["device"]), default=None,
                     help="Where P3M-Net runs."),
        click.option("--precision", type=click.Choice(CutoutConfig.CHOICES["precision"]), default=None,
                     help="P3M-Net on CUDA: mixed (default, within 1/255 of float32), fp16 (2.5x faster, not "
                          "within 1/255), bf16, fp32."),
    ]):
        command = option(command)
    return command


def setup_logging(quiet: bool) -> None:
    """INFO lines from the pipeline (model, codecs) unless `quiet`; warnings and errors always."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s",
                        force=True)
    logging.getLogger("stream").setLevel(logging.WARNING if quiet else logging.INFO)
