"""`p3m batch`: every video of folders, globs or lists cut out like `p3m cutout`, on a local process pool or
on a Ray cluster."""
from __future__ import annotations

import sys

import click

from stream.cli.options import (
    command_defaults,
    face_options,
    matting_options,
    model_options,
    offline_options,
    output_options,
    setup_logging,
    verbose_option,
)
from stream.jobs.batch.inputs import DEFAULT_NAME
from stream.jobs.config import CutoutConfig

_DEFAULTS = command_defaults(CutoutConfig)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the cut-outs: the input folders' tree is mirrored under it.")
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="Output file name from {stem}, {ext} and {parent}; its extension picks the format as in cutout "
                   "(.mp4/.mkv/.mov/.webm; transparent: .webm/.mov/.mkv). --alpha-out takes a template too.")
@click.option("--config", "-c", "config_file", default=None,
              help=f"YAML preset for every video: a file or a name in configs/ ({', '.join(CutoutConfig.presets())}). "
                   "Flags override it.")
@model_options
@matting_options(_DEFAULTS)
@output_options(_DEFAULTS)
@offline_options(_DEFAULTS)
@face_options(_DEFAULTS)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: one Ray task per video (pip install "
                   "'p3m-stream[ray]').")
@click.option("--workers", "-j", type=int, default=None,
              help="Local engine: videos cut side by side (default: one per GPU, or one per two CPU cores).")
@click.option("--ray-address", default=None,
              help="Ray engine: the cluster, e.g. 10.0.0.5:6379 (default: RAY_ADDRESS, else a local Ray).")
@click.option("--cpus-per-video", type=float, default=None, help="CPU cores a video takes (default 2).")
@click.option("--gpus-per-video", type=float, default=None,
              help="GPUs a video takes; a fraction shares one (0.5: two videos a GPU).")
@click.option("--overwrite", is_flag=True, help="Cut videos whose outputs already exist again (default: skip them).")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Also write a report: .json or .csv (per video: status, frames, seconds, fps, model, host, error).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or info lines; failures and the summary only.")
@verbose_option
def batch(inputs: tuple[str, ...], output_dir: str, name: str, config_file: str | None, engine: str,
          workers: int | None, ray_address: str | None, cpus_per_video: float | None, gpus_per_video: float | None,
          overwrite: bool, report: str | None, quiet: bool, **options: object) -> None:
    """Cut the person out of many videos: every cutout option applies to each.

    INPUTS are video files, folders (searched recursively for videos and image-sequence folders), globs
    ('clips/**/*.mov') or @list.txt (a path a line). Resumable: videos whose outputs exist are skipped, and
    an output appears only when complete. A failed video is reported and the others go on. Exit code: 0 when
    all succeeded, 1 when any failed, 130 on Ctrl-C (which keeps the videos already finished).
    """
    from stream.jobs.batch.run import batch as run  # deferred: `p3m --help` stays fast

    setup_logging(quiet)
    result = run(list(inputs), output_dir, config=config_file, engine=engine, workers=workers,
                 ray_address=ray_address, cpus_per_video=cpus_per_video, gpus_per_video=gpus_per_video,
                 overwrite=overwrite, name=name, report=report, quiet=quiet, **options)
    click.echo(result.table(), err=True)
    if report is not None:
        click.echo(f"report: {report}", err=True)
    if result.exit_code:
        sys.exit(result.exit_code)
