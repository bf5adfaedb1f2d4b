"""`p3m preview`: try the cut-out's settings on a frame or a few, in seconds. A plain click.Command attached to
the `p3m` group by stream/cli/main.py."""
from __future__ import annotations

import click

from stream.cli.options import (
    command_defaults,
    confirm_overwrite,
    face_options,
    matting_options,
    model_options,
    overwrite_option,
    parse_time,
    setup_logging,
)
from stream.jobs.config import CutoutConfig

_DEFAULTS = command_defaults(CutoutConfig)


@click.command("preview", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input")
@click.option("--output", "-o", required=True, help="The PNG to write: input | matte | composite, a row per frame.")
@click.option("--at", default="0", metavar="TIME", show_default=True,
              help="The (first) frame's time: seconds (12.5) or [HH:]MM:SS[.ms].")
@click.option("--frames", type=int, default=1, show_default=True,
              help="Frames shown, spread from --at to the end of the input (at most 12).")
@click.option("--config", "-c", "config_file", default=None,
              help="YAML preset, as for p3m cutout (its matting and compositing options apply). Flags override it.")
@click.option("--refine/--no-refine", default=None, help="Closed-form matting at the matte's edges, as in cutout.")
@model_options
@matting_options(_DEFAULTS)
@face_options(_DEFAULTS)
@overwrite_option
@click.option("--quiet", "-q", is_flag=True, help="No info lines; errors and the summary only.")
def preview(input: str, output: str, at: str, frames: int, config_file: str | None, overwrite: bool, quiet: bool,
            **options: object) -> None:
    """Cut out a frame of INPUT (or a few) as `p3m cutout` would, with the same options, and write them side by
    side with their matte: a quick look before a long job. INPUT is a video, an image, a folder of images or a
    pattern like frames/%05d.png. Each frame runs alone: temporal smoothing does not apply to it.
    """
    from stream.jobs.config import load_config
    from stream.jobs.preview import run_preview

    setup_logging(quiet)
    settings = load_config(config_file, **options)
    result = run_preview(input, output, settings, at=parse_time(at, "--at"), frames=frames, overwrite=overwrite,
                         confirm=confirm_overwrite())
    click.echo(result.summary(), err=True)
