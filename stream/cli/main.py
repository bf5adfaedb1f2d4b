"""The `p3m` command: the group that prints user errors as one line, the video commands (cutout, demo,
live) and the model's own commands (model/cli.py)."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click

from model.cli import MODEL_COMMANDS
from model.errors import P3MError
from stream.cli.batch import batch as batch_command
from stream.cli.live import live as live_command
from stream.cli.options import (
    command_defaults,
    confirm_overwrite,
    face_options,
    matting_options,
    model_options,
    offline_options,
    output_options,
    overwrite_option,
    setup_logging,
    span_options,
    verbose_asked,
    verbose_option,
)
from stream.cli.preview import preview as preview_command
from stream.jobs.config import CutoutConfig

_DEFAULTS = command_defaults(CutoutConfig)


class _Group(click.Group):
    """Prints errors as one line (plus a hint) and exits 1, never with a traceback: ours, and unexpected ones
    (a bug: P3M_DEBUG=1 shows its traceback). Ctrl-C or SIGTERM outside a running job exits 130."""

    def invoke(self, ctx: click.Context):
        try:
            with _sigterm_as_interrupt():
                return super().invoke(ctx)
        except P3MError as e:
            _fail(e.message, e.hint)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise                        # usage errors, --help, --version: click prints them
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            if os.environ.get("P3M_DEBUG"):
                raise
            from stream.pipeline.runner import StageError  # deferred: `p3m --help` stays fast

            what = str(e) if isinstance(e, StageError) else f"{type(e).__name__}: {e}"
            _fail(f"internal error: {what}", "please report it with the command line; P3M_DEBUG=1 shows the traceback")


def _fail(message: str, hint: str) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)     # one line, even for multi-line errors
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so an output being written is finalised or removed instead of left half-done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p3m-stream")
@verbose_option
def main() -> None:
    """p3m-stream: privacy-preserving portrait matting (P3M-Net) for images and video.

    \b
    p3m image  photo.jpg --weights p3mnet.pth -o out/   alpha mattes of images
    p3m eval   --pred out/ --gt P3M-500-P/               SAD, MSE, Grad, Conn ...
    p3m cutout talk.mp4 -o talk_green.mp4                 cut the person out of a video
    p3m cutout talk.mp4 -b transparent -o overlay.webm    transparent overlay (VP9 alpha)
    p3m preview talk.mp4 --at 1:30 -o preview.png         try the settings on one frame first
    p3m batch clips/ -o cutouts/ --report report.json     every video of a folder (resumable)
    p3m live --camera /dev/video0 --virtual-cam           webcam to a virtual camera, background blurred
    p3m demo -o demo_out/                                 the above on a bundled demo clip
    """
    if verbose_asked():      # for the model's commands, which set up no logging of their own
        setup_logging()


@main.command()
@click.argument("input")
@click.option("--output", "-o", required=True,
              help="Composite .mp4/.mkv/.mov (H.264) or .webm (VP9); transparent .webm (VP9 alpha), "
                   ".mov (ProRes 4444), .mkv (FFV1); or a PNG sequence such as out/%05d.png. Photos: a folder, "
                   "out/ (each as <stem>.png), or one photo's .png.")
@click.option("--config", "-c", "config_file", default=None,
              help=f"YAML preset: a file or a name in configs/ ({', '.join(CutoutConfig.presets())}); a live "
                   "preset gives its shared fields. Flags override it.")
@click.option("--matte", default=None, metavar="MATTE",
              help="Take the alpha from this grayscale video or image sequence (e.g. an --alpha-out of an earlier "
                   "run) instead of a model: one frame per input frame.")
@click.option("--refine/--no-refine", default=None,
              help="Quality mode: closed-form matting refines each matte's edges (about a second a frame; the "
                   "time it cost is printed). Default off.")
@model_options
@matting_options(_DEFAULTS)
@output_options(_DEFAULTS)
@overwrite_option
@offline_options(_DEFAULTS)
@span_options
@face_options(_DEFAULTS)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or info lines; errors and the summary only.")
@verbose_option
def cutout(input: str, output: str, config_file: str | None, quiet: bool, overwrite: bool,
           **options: object) -> None:
    """Cut the person out of a video: composite onto a background, or write a transparent video.

    INPUT is a video file, a URL FFmpeg opens (rtsp/http), a folder of images or a pattern like
    frames/%05d.png. Audio is copied untouched; every frame is kept. Ctrl-C stops cleanly and keeps a
    playable file with the frames done so far. A photo, or a folder of photos of any sizes, cut out into a
    folder keeps its names (-o out/ writes out/<stem>.png).
    """
    from stream.jobs.offline import cutout as run

    setup_logging(quiet)
    result = run(input, output, config=config_file, quiet=quiet, overwrite=overwrite, confirm=confirm_overwrite(),
                 **options)
    click.echo(result.summary(), err=True)
    if result.interrupted:
        sys.exit(130)


@main.command()
@click.option("--output", "-o", "outdir", default="p3m_demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for demo_input.mp4 and the cut-outs.")
@click.option("--quiet", "-q", is_flag=True)
@verbose_option
def demo(outdir: str, quiet: bool) -> None:
    """Make a short clip from a packaged portrait and cut it out with the bundled model (no download).

    Writes OUTDIR/demo_input.mp4, OUTDIR/demo_green.mp4 (composite with the input's sound) and
    OUTDIR/demo_transparent.webm (VP9 with alpha).
    """
    from stream.jobs.demo import make_demo_clip
    from stream.jobs.offline import cutout as run

    setup_logging(quiet)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    clip = make_demo_clip(out / "demo_input.mp4")
    for name, background in (("demo_green.mp4", "green"), ("demo_transparent.webm", "transparent")):
        result = run(clip, out / name, background=background, quiet=quiet, overwrite=True)   # its own folder
        click.echo(result.summary(), err=True)


for command in (preview_command, live_command, batch_command, *MODEL_COMMANDS):
    main.add_command(command)
