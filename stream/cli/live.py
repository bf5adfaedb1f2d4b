"""`p3m live`: a webcam in, a composited stream out. A plain click.Command: stream/cli/main.py attaches it to
the `p3m` group (`main.add_command(live)`), whose error handling prints our P3MErrors as one line."""
from __future__ import annotations

import sys

import click

from stream.cli.options import (
    command_defaults,
    confirm_overwrite,
    face_options,
    matting_options,
    model_options,
    output_options,
    overwrite_option,
    setup_logging,
    verbose_option,
)
from stream.jobs.config import LIVE_PRESET, LiveConfig

_DEFAULTS = command_defaults(LiveConfig, LIVE_PRESET)


@click.command("live", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--camera", "-i", default=None, metavar="CAMERA",
              help="/dev/video0 (Linux, v4l2), 0 (macOS avfoundation; Windows via OpenCV), dshow:video=NAME, "
                   "opencv:0, a video file or URL (played at its own rate), or 'synthetic'. Default: the first camera.")
@click.option("--camera-size", default=None, metavar="WxH", help="Ask the camera for this size, e.g. 1280x720.")
@click.option("--camera-fps", type=float, default=None, help="Ask the camera for this frame rate.")
@click.option("--camera-format", type=click.Choice(LiveConfig.CHOICES["camera_format"]), default=None,
              help="Camera pixel format: mjpeg (high sizes at full rate) or yuyv (uncompressed).")
@click.option("--camera-backend", type=click.Choice(LiveConfig.CHOICES["camera_backend"]), default=None,
              help="auto: PyAV, or OpenCV where this PyAV lacks the device input.")
@click.option("--virtual-cam", is_flag=False, flag_value="auto", default=None, metavar="[DEVICE]",
              help="Send to a virtual camera (v4l2loopback; OBS's on macOS/Windows); the default output.")
@click.option("--virtual-cam-backend", default=None, help="pyvirtualcam backend (v4l2loopback, obs, unitycapture).")
@click.option("--preview", is_flag=True, default=None, help="Show the output in a window (q quits).")
@click.option("--output", "-o", default=None, help="Also record: .mp4/.mkv/.mov, transparent .webm/.mov/.mkv.")
@click.option("--stream-url", default=None,
              help="Also stream: rtmp://host/app/key (FLV/H.264), srt:// or tcp:// (MPEG-TS; WebM VP9+alpha "
                   "when transparent), udp://.")
@click.option("--stats", is_flag=True, help="Print frames in/matted/reused/dropped/sent and latency every second.")
@face_options(_DEFAULTS)
@click.option("--config", "-c", "config_file", default="virtual_background", show_default=True,
              help=f"YAML preset: a file or a name in configs/ ({', '.join(LiveConfig.presets())}); a cutout "
                   "preset gives its shared fields. Flags override it.")
@model_options
@matting_options(_DEFAULTS)
@output_options(_DEFAULTS)
@overwrite_option
@click.option("--queue-size", type=click.IntRange(1, 2), default=None, help="Frames each live queue holds (1-2).")
@click.option("--alpha-wait-ms", type=float, default=None,
              help="How long a frame may wait for its own alpha when the model keeps up, at most a frame interval "
                   "(else: the newest alpha; default 40).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--quiet", "-q", is_flag=True, help="Errors and the end summary only.")
@verbose_option
def live(camera: str | None, config_file: str, stats: bool, duration: float | None, quiet: bool,
         overwrite: bool, **options: object) -> None:
    """Cut yourself out of a webcam stream, live: to a virtual camera for Zoom/Meet/OBS, a preview window,
    a recording and/or a network stream. Latency stays bounded: stale frames are dropped, and when the
    model is slower than the camera the newest matte is reused. Ctrl-C (or q in the preview) stops.

    \b
    p3m live --camera /dev/video0 --virtual-cam              blurred background into the virtual camera
    p3m live --camera 0 -b office.jpg --preview --blur-faces  replaced background, faces pixelated
    p3m live --camera talk.mp4 -b transparent --stream-url tcp://127.0.0.1:9000   an overlay for OBS
    """
    from stream.jobs.live import live as run

    setup_logging(quiet)
    result = run(camera, config=config_file, stats=stats, duration=duration, quiet=True, overwrite=overwrite,
                 confirm=confirm_overwrite(), **options)
    click.echo(result.summary(), err=True)
    if result.interrupted:
        sys.exit(130)              # as `cutout`: a signal stopped it, the outputs were finalised
