"""What `p3m cutout` and `p3m live` share on the command line: the model, matting, output and face options
(declared once here, choices from the config's CHOICES, help naming each command's defaults) and the logging
setup."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from model.errors import P3MError
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
        click.option("--model", "-m", default=None,
                     help="auto (default) | p3mnet (any variant) | p3mnet-r34 | p3mnet-vitae-s | p3mnet-swin-t | "
                          "mediapipe."),
        click.option("--weights", "-w", default=None, help="P3M-Net checkpoint; implies --model p3mnet under auto."),
        click.option("--device", type=click.Choice(CutoutConfig.CHOICES["device"]), default=None,
                     help="Where P3M-Net runs."),
        click.option("--precision", type=click.Choice(CutoutConfig.CHOICES["precision"]), default=None,
                     help="P3M-Net on CUDA: mixed (default, within 1/255 of float32), fp16 (2.5x faster, not "
                          "within 1/255), bf16, fp32."),
    ])


def matting_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--infer-size, --upsample, --subjects, --smoothing, --smoothing-strength, --background and the matte tuning,
    as both jobs take them."""
    return lambda command: _with(command, [
        click.option("--infer-size", type=int, default=None,
                     help=f"Long side the model sees (P3M-Net: a multiple of 32; default {defaults.infer_size})."),
        click.option("--upsample", type=click.Choice(defaults.CHOICES["upsample"]), default=None,
                     help="Alpha upsampling: edge-aware guided filter or plain bilinear "
                          f"(default {defaults.upsample})."),
        click.option("--subjects", type=click.Choice(defaults.CHOICES["subjects"]), default=None,
                     help="main: only the person the matte is about (regions not connected to it dropped); all: "
                          "every region that persists over frames; off: the matte as it comes; auto: main for the "
                          f"bundled model, else off (default {defaults.subjects})."),
        click.option("--smoothing/--no-smoothing", default=None,
                     help=f"Temporal alpha smoothing (default {'on' if defaults.smoothing else 'off'})."),
        click.option("--smoothing-strength", type=float, default=None,
                     help=f"0..1 (default {defaults.smoothing_strength:g})."),
        click.option("--background", "-b", default=None,
                     help="green | '#RRGGBB' | blur | blur:STRENGTH | an image or video file | transparent (files "
                          f"and streams only); default {defaults.background}."),
        click.option("--foreground-estimation/--no-foreground-estimation", default=None,
                     help="Estimate the person's own colours at soft edges, so no halo of the old background comes "
                          f"along (default {'on' if defaults.foreground_estimation else 'off'})."),
        click.option("--threshold", type=float, default=None, metavar="T",
                     help="Matte tuning: alpha below T (0-0.99) becomes 0, above it stays soft (default "
                          f"{defaults.threshold:g}: off)."),
        click.option("--erode", type=int, default=None, metavar="PX",
                     help=f"Shrink the matte by PX pixels (default {defaults.erode})."),
        click.option("--dilate", type=int, default=None, metavar="PX",
                     help=f"Grow the matte by PX pixels, after --erode (default {defaults.dilate})."),
        click.option("--feather", type=int, default=None, metavar="PX",
                     help=f"Soften the matte's edges over PX pixels (default {defaults.feather})."),
        click.option("--spill", type=click.Choice(defaults.CHOICES["spill"]), default=None,
                     help="Take a green or blue screen's colour cast off the person (default "
                          f"{defaults.spill})."),
    ])


def output_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--alpha-out, --crf, --preset and --odd-size: what both jobs write beside their main output, and how its
    files are encoded."""
    return lambda command: _with(command, [
        click.option("--alpha-out", default=None,
                     help="Also write the matte as a grayscale video (.mp4/.mov, or .mkv lossless)."),
        click.option("--crf", type=int, default=None,
                     help=f"Quality of the H.264 files written, CRF 0-51 (default {defaults.crf})."),
        click.option("--preset", default=None,
                     help="Encoding speed: x264's presets (ultrafast ... veryslow) for H.264; a .webm gets VP9's "
                          f"settings of about the same speed (realtime up to fast; default {defaults.preset})."),
        click.option("--odd-size", type=click.Choice(defaults.CHOICES["odd_size"]), default=None,
                     help="H.264 4:2:0 needs even sizes: an odd-sized video gets one row/column more at the "
                          f"bottom/right (pad, the edge repeated) or less (crop); default {defaults.odd_size}."),
    ])


def overwrite_option(command: F) -> F:
    """-y/--overwrite, for the commands that write files: existing outputs are refused without it (asked on a
    terminal), like ffmpeg."""
    return click.option("--overwrite", "-y", is_flag=True,
                        help="Replace existing output files (without it they are refused; a terminal asks).")(command)


def confirm_overwrite() -> Callable[[str], bool] | None:
    """A y/N question for an existing output when stdin is a terminal (None otherwise: it is refused)."""
    if not stdin_is_terminal():
        return None
    return lambda question: click.confirm(question, default=False, err=True)


def stdin_is_terminal() -> bool:
    """True when someone can answer a question (not a pipe, a file or a CI runner)."""
    return sys.stdin.isatty()


def offline_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--audio, --batch and --hw-codecs: what `p3m cutout` and `p3m batch` take for each video."""
    return lambda command: _with(command, [
        click.option("--audio/--no-audio", default=None, help="Copy the input's audio (default) or drop it."),
        click.option("--batch", type=int, default=None,
                     help="Frames matted together (default: 8 for P3M-Net on a GPU, 2 for the bundled model, else 1)."),
        click.option("--hw-codecs", type=click.Choice(defaults.CHOICES["hw_codecs"]), default=None,
                     help="auto (default): NVENC where it works here, CPU decoding; all: NVDEC too; off: CPU codecs "
                          "only."),
    ])


def span_options(command: F) -> F:
    """--start, --duration and --frames: a piece of the input, to try settings on a long clip."""
    return _with(command, [
        click.option("--start", default=None, metavar="TIME", callback=_time,
                     help="Start this far into the input: seconds (12.5) or [HH:]MM:SS[.ms] (frame-accurate; the "
                          "audio is cut to match, the output starts at 0)."),
        click.option("--duration", default=None, metavar="TIME", callback=_time,
                     help="Cut-out this long from the start (same forms as --start)."),
        click.option("--frames", type=int, default=None, metavar="N", help="Or: this many frames from the start."),
    ])


def parse_time(text: str, what: str = "time") -> float:
    """Seconds from `12.5`, `1:30` or `1:02:03.5`; P3MError naming `what` for anything else or a negative time."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or any(not p.strip() for p in parts):
            raise ValueError(text)
        values = [float(p) for p in parts]
    except ValueError:
        raise P3MError(f"{what} {text!r} is not a time", "give seconds (12.5) or [HH:]MM:SS[.ms] (1:02:03.5)") from None
    if any(v < 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise P3MError(f"{what} {text!r} is not a time within a video",
                       "times are 0 or more, minutes and seconds under 60: e.g. 90, 1:30 or 0:01:30")
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    return None if value is None else parse_time(value, f"--{param.name}")


def face_options(defaults: CutoutConfig) -> Callable[[F], F]:
    """--blur-faces, --blur-style and --face-model, as both jobs take them."""
    return lambda command: _with(command, [
        click.option("--blur-faces", type=click.Choice(defaults.CHOICES["blur_faces"]), is_flag=False,
                     flag_value="all", default=None, callback=_blur_faces,
                     help="Hide faces in the output (privacy): all (the bare flag), or others (keeps the face of "
                          "the person the matte keeps)."),
        click.option("--no-blur-faces", is_flag=True, expose_value=False, callback=_blur_faces,
                     help="Leave faces as they are (overrides a preset's blur_faces)."),
        click.option("--blur-style", type=click.Choice(defaults.CHOICES["blur_style"]), default=None,
                     help=f"How faces are hidden (default {defaults.blur_style})."),
        click.option("--face-model", type=click.Choice(defaults.CHOICES["face_model"]), default=None,
                     help="Face detector: short (webcam distance) or full (up to ~5 m); "
                          f"default {defaults.face_model}."),
    ])


def _blur_faces(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """--blur-faces [all|others] and --no-blur-faces into one `blur_faces` (False: off), whichever click reads
    first."""
    if param.name == "no_blur_faces":
        if value:
            ctx.params["blur_faces"] = False
        return None
    return ctx.params.get("blur_faces", value) if value is None else value


def _with(command: F, options: Sequence[Callable[[F], F]]) -> F:
    """`command` with `options` listed in this order in its help."""
    for option in reversed(options):
        command = option(command)
    return command


VERBOSE = "p3m.verbose"    # ctx.meta key, shared by the `p3m` group's context and its command's


def verbose_option(command: F) -> F:
    """-v/--verbose, on the `p3m` group and on each command: debug lines too (why a codec was chosen, what the
    bundled model's native code printed)."""
    return click.option("--verbose", "-v", is_flag=True, expose_value=False, callback=_remember_verbose,
                        help="Debug lines too: why each codec was chosen, the bundled model's own output.")(command)


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[VERBOSE] = True


def verbose_asked() -> bool:
    """True when -v was given to the `p3m` group or to the running command."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(VERBOSE))


def setup_logging(quiet: bool = False) -> None:
    """INFO lines from the pipeline (model, codecs) unless `quiet`; DEBUG ones with -v (on the group or the
    command); warnings and errors always."""
    level = logging.DEBUG if verbose_asked() else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s: %(message)s",
                        force=True)
    for ours in ("stream", "model"):       # third-party chatter is logged under these at debug level
        logging.getLogger(ours).setLevel(level)
