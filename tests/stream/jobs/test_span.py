"""A piece of the input (`--start`, `--duration`, `--frames`): frame-accurate, its sound cut alike, errors."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import helpers.doubles  # noqa: F401 - registers the red-key test model
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.media import FPS, decoded_video, square_image, write_clip

from model.errors import P3MError
from stream import cutout
from stream.cli.main import main
from stream.cli.options import parse_time

START = 17          # the first frame kept: two after the keyframe at 15




@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames with a keyframe every 5, so that a start seeks to a keyframe and decodes forward."""
    return write_clip(tmp_path_factory.mktemp("span") / "gop.mp4", keyframes_every=5)


def input_frames_shown(out: Path, clip: Path) -> list[int]:
    """For each frame of `out`, the input frame it shows: the one its pixels are closest to."""
    inputs = [f.to_ndarray(format="rgb24").astype(float) for f in decoded_video(clip)]
    return [int(np.argmin([np.abs(f.to_ndarray(format="rgb24") - i).mean() for i in inputs]))
            for f in decoded_video(out)]


def audio(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.duration, bytes(p)) for p in container.demux(audio=0) if p.size and p.pts is not None]


def test_a_piece_starts_on_its_frame_at_zero_with_the_sound_that_overlaps_it(gop_clip, tmp_path):
    out = tmp_path / "piece.mov"          # ProRes 4444: the frames' own colours come through (no chroma halving)
    result = cutout(gop_clip, out, model="red-key", infer_size=64, background="transparent", start=START / FPS,
                    duration=10 / FPS, quiet=True)
    frames = decoded_video(out)
    assert result.frames == len(frames) == 10 and result.damaged == 0
    assert input_frames_shown(out, gop_clip) == list(range(START, START + 10))
    assert float(frames[0].pts * frames[0].time_base) == 0
    # The input's packets that overlap [START, START + 10) frames, as they were, shifted by the start.
    shift = round(START / FPS * 48000)
    start_s, end_s = START / FPS, (START + 10) / FPS
    expected = [(pts - shift, d, data) for pts, d, data in audio(gop_clip)
                if (pts + d) / 48000 > start_s and pts / 48000 <= end_s]
    assert audio(out) == expected


def test_frames_counts_from_the_start_given_as_minutes_and_seconds(gop_clip, tmp_path):
    out = tmp_path / "five.mkv"
    args = ["--model", "red-key", "--infer-size", "64", "-b", "transparent", "--start", "0:00.68", "--frames", "5"]
    result = CliRunner().invoke(main, ["cutout", str(gop_clip), "-o", str(out), *args, "-q"])
    assert result.exit_code == 0, result.output
    assert input_frames_shown(out, gop_clip) == list(range(START, START + 5))


def test_an_image_sequence_is_cut_by_its_frame_rate(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(square_image(i), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out" / "%03d.png"
    cutout(folder, out, model="red-key", infer_size=64, background="transparent", start=2 / FPS, frames=3,
           quiet=True)
    written = sorted((tmp_path / "out").glob("*.png"))
    shown = [int(np.argmin([np.abs(cv2.imread(str(f))[..., ::-1] - square_image(i).astype(float)).mean()
                            for i in range(6)])) for f in written]
    assert shown == [2, 3, 4]


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "9"], "the start, 9 s, is past the end of"),
    (["--start", "-1"], "--start '-1' is not a time within a video"),
    (["--duration", "1:75"], "--duration '1:75' is not a time within a video"),
    (["--start", "ten"], "--start 'ten' is not a time"),
    (["--duration", "1", "--frames", "3"], "duration and frames both given"),
    (["--duration", "0"], "duration: 0 s is not a length"),
])
def test_a_bad_piece_is_one_error_line_and_no_output(gop_clip, tmp_path, args, message):
    out = tmp_path / "never.mp4"
    result = CliRunner().invoke(main, ["cutout", str(gop_clip), "-o", str(out), "--model", "red-key", *args])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"error: {message}") and lines[1].startswith("  hint: ")
    assert not out.exists()


def test_times_read_as_seconds_or_clock_times():
    assert [parse_time(t) for t in ("12.5", "1:30", "1:02:03.5", "0")] == [12.5, 90.0, 3723.5, 0.0]
    with pytest.raises(P3MError):
        parse_time("1::2")


def test_a_live_preset_cannot_cut():
    from stream.jobs.config import ConfigError, LiveConfig

    with pytest.raises(ConfigError, match="start: not a live option"):
        LiveConfig(start=3.0)


def test_a_given_matte_is_cut_alike(gop_clip, tmp_path):
    matte, piece = tmp_path / "matte.mkv", tmp_path / "piece_matte.mkv"
    cutout(gop_clip, tmp_path / "all.mp4", model="red-key", infer_size=64, alpha_out=str(matte), quiet=True)
    cutout(gop_clip, tmp_path / "piece.mp4", matte=str(matte), start=START / FPS, frames=5, alpha_out=str(piece),
           quiet=True)
    whole = [f.to_ndarray(format="gray") for f in decoded_video(matte)]
    cut = [f.to_ndarray(format="gray") for f in decoded_video(piece)]
    assert len(cut) == 5
    for i, alpha in enumerate(cut):
        np.testing.assert_array_equal(alpha, whole[START + i])
