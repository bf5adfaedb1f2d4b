"""The bad-input matrix through the `p3m cutout` CLI: every case exits with a known code, one `error:` line
(plus its hint) and no traceback, and leaves either nothing or a finalised, playable output."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from helpers import robust_media as rm

from stream.cli.main import main

REPO = Path(__file__).resolve().parents[2]
FAST = ["-m", "key", "--infer-size", "64", "--preset", "ultrafast", "-q"]


def cutout(*args: object) -> Result:
    return CliRunner().invoke(main, ["cutout", *map(str, args)])


def assert_one_line_error(result: Result, *words: str) -> str:
    """Exit 1, stderr = `error: …` (+ `  hint: …`), nothing on stdout, no traceback; returns the error line."""
    assert result.exit_code == 1, result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exc_info
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), lines
    assert all(line.startswith("  hint: ") for line in lines[1:]) and len(lines) <= 2, lines
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines
    return lines[0]


def assert_nothing_left(folder: Path) -> None:
    """No output and no hidden partial file."""
    assert sorted(p.name for p in folder.iterdir()) == []


def assert_playable(result: Result, out: Path, frames: int) -> list:
    """Exit 0, no traceback, a finalised output with `frames` frames, no partial file beside it."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    decoded = rm.decode(out)
    assert len(decoded) == frames
    assert f"{frames} frames" in result.stderr.splitlines()[-1]
    assert not [p.name for p in out.parent.iterdir() if ".part" in p.name]
    return decoded


# --- inputs that cannot be used ------------------------------------------------------------------------

@pytest.mark.parametrize("name, words", [
    ("missing.mp4", ["input not found"]),
    ("folder", ["no images in folder"]),                              # a folder is an image sequence
    ("empty.mp4", ["cannot open", "Invalid data"]),
    ("text.mp4", ["cannot open", "Invalid data"]),
    ("truncated.mp4", ["cannot open"]),                               # moov was at the end: nothing to read
    ("audio_only.m4a", ["no video stream", "audio"]),
    ("no_frames.avi", ["has a video stream but no frame"]),           # header with a size, zero frames
    ("no_frames.mkv", ["cannot open", "End of file"]),                # FFmpeg cannot even probe it
])
def test_unusable_input_is_one_line_and_leaves_nothing(inputs, tmp_path, name, words):
    result = cutout(inputs / name, "-o", tmp_path / "out.mp4", *FAST)
    assert_one_line_error(result, *words)
    assert_nothing_left(tmp_path)


# --- damaged inputs that still have frames: keep them, say what was lost ----------------------------------

@pytest.mark.parametrize("name, total", [("truncated_faststart.mp4", 30), ("truncated.mkv", 30)])
def test_truncated_input_keeps_the_frames_before_the_cut_and_says_so(inputs, tmp_path, name, total):
    out = tmp_path / "out.mp4"
    result = cutout(inputs / name, "-o", out, *FAST)
    kept = len(rm.decode(out))
    assert 0 < kept < total
    assert_playable(result, out, kept)
    assert f"ended after {kept} of the {total} frames" in result.stderr and "truncated" in result.stderr


def test_corrupted_packet_drops_that_frame_with_a_warning_and_an_honest_count(inputs, tmp_path):
    out = tmp_path / "out.mp4"
    result = cutout(inputs / "corrupt_packet.mp4", "-o", out, *FAST)
    assert_playable(result, out, 29)
    assert "WARNING" in result.stderr and "skipped a damaged packet after 8 frames" in result.stderr
    assert "29 frames (1 damaged input frame skipped)" in result.stderr
    # The frames that remain keep their times: the player shows the previous frame over the gap.
    good = rm.frame_times(inputs / "thirty.mp4")
    assert rm.frame_times(out) == pytest.approx(good[:8] + good[9:])


# --- odd but valid inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size, odd_size", [("1x1.mkv", (2, 2), "crop"), ("3x5.mkv", (2, 4), "crop"),
                                                  ("4097x17.mkv", (4098, 18), "pad")])
def test_odd_sizes_become_even_for_h264(inputs, tmp_path, name, size, odd_size):
    out = tmp_path / "out.mp4"
    result = cutout(inputs / name, "-o", out, *FAST, "--odd-size", odd_size)
    frames = assert_playable(result, out, 5)
    assert (frames[0].width, frames[0].height, frames[0].format.name) == (*size, "yuv420p")


def test_rotated_phone_video_comes_out_upright(inputs, tmp_path):
    out = tmp_path / "out.mkv"                                          # transparent FFV1: lossless
    result = cutout(inputs / "rotated.mp4", "-o", out, *FAST, "-b", "transparent")
    frames = assert_playable(result, out, 5)
    assert (frames[0].width, frames[0].height) == (rm.H, rm.W)        # 64×48 stored, turned a quarter
    rgb = frames[0].to_ndarray(format="rgba")[..., :3]
    expected = np.rot90(rm.image(0), -1)                               # clockwise, as FFmpeg displays it
    assert np.abs(rgb.astype(int) - expected).mean() < 6
    assert rgb[:6, -6:].min() > 200 and rgb[:6, :6].max() < 150        # the white corner moved to the top right


def test_variable_frame_rate_keeps_the_input_timestamps(inputs, tmp_path):
    out = tmp_path / "out.mkv"
    result = cutout(inputs / "vfr.mp4", "-o", out, *FAST)
    assert_playable(result, out, 10)
    assert rm.frame_times(out) == pytest.approx([0, .04, .08, .2, .22, .26, .4, .41, .42, .5], abs=1e-3)
    assert rm.frame_times(out) == pytest.approx(rm.frame_times(inputs / "vfr.mp4"), abs=1e-3)


def test_ten_bit_input_is_converted_to_8_bit_rgb(inputs, tmp_path):
    out = tmp_path / "out.mkv"
    result = cutout(inputs / "10bit.mkv", "-o", out, *FAST, "-b", "transparent")
    frames = assert_playable(result, out, 10)
    rgba = frames[3].to_ndarray(format="rgba").astype(int)
    expected = rm.image(3)
    assert np.abs(rgba[..., :3] - expected).mean() < 4
    # Alpha on the red square only; the guided filter softens the square's border rows to ~183.
    assert rgba[12:20, 4:10, 3].min() > 150 and rgba[40:, :, 3].max() < 30


# --- outputs that cannot be written ----------------------------------------------------------------------

def test_output_in_an_unwritable_folder(inputs, tmp_path):
    # Tests run as root, so permission bits do not stop us: procfs refuses to create files even for root.
    for target, words in [("/proc/p3m_test_out.mp4", ["cannot write to /proc"]),
                          ("/proc/p3m_test_frames/%04d.png", ["cannot create output folder /proc/p3m_test_frames"])]:
        result = cutout(inputs / "ok.mp4", "-o", target, *FAST)
        assert_one_line_error(result, *words)
        assert not os.path.exists(target)


@pytest.mark.parametrize("output, words", [
    ("a_file/out.mp4", ["a_file is a file, not a folder"]),     # a missing folder is made (test_output_paths.py)
    ("out.avi", ["cannot write a composite video to '.avi'"]),
])
def test_bad_output_paths(inputs, tmp_path, output, words):
    (tmp_path / "a_file").write_text("")
    result = cutout(inputs / "ok.mp4", "-o", tmp_path / output, *FAST)
    assert_one_line_error(result, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_output_equal_to_the_input_is_refused_and_the_input_untouched(inputs, tmp_path):
    video = tmp_path / "talk.mp4"
    shutil.copy(inputs / "ok.mp4", video)
    (tmp_path / "link.mp4").symlink_to(video)
    before = video.read_bytes()
    for output in (video, tmp_path / "link.mp4", tmp_path / "." / "talk.mp4"):
        assert_one_line_error(cutout(video, "-o", output, *FAST), "would write over the input")
    assert_one_line_error(cutout(video, "-o", tmp_path / "out.mp4", "--alpha-out", video, *FAST),
                          "would write over the input")
    assert video.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mp4", "talk.mp4"]


# --- bad options and configuration -----------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["-b", "plaid"], ["unknown background: 'plaid'"]),
    (["-b", "#12345"], ["not a #RRGGBB colour"]),
    (["-b", "blur:-3"], ["blur strength"]),
    (["-b", "/nowhere/bg.png"], ["background file not found"]),
    (["-b", "{inputs}/text.mp4"], ["neither an image nor a video"]),
    (["-m", "nonsense"], ["unknown model 'nonsense'"]),
    (["--crf", "99"], ["crf: 99 is outside [0, 51]"]),
    (["--infer-size", "5000"], ["infer_size: 5000 is outside [64, 4096]"]),
    (["--smoothing-strength", "2"], ["smoothing_strength"]),
    (["-c", "no_such_preset"], ["config file not found: no_such_preset"]),
    (["-c", "{cfg}/bad_value.yaml"], ["crf: expected int, got 'lots'"]),
    (["-c", "{cfg}/unknown.yaml"], ["unknown option(s): colour"]),
    (["-c", "{cfg}/bad_choice.yaml"], ["preset: 'warp9' is not one of"]),
    (["-c", "{cfg}/not_yaml.yaml"], ["not valid YAML"]),
    (["-c", "{cfg}/a_list.yaml"], ["expected a mapping"]),
])
def test_unknown_background_and_config_values(inputs, tmp_path, args, words):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for name, text in {"bad_value": "crf: lots\n", "unknown": "colour: red\n", "bad_choice": "preset: warp9\n",
                       "not_yaml": "crf: [1,\n", "a_list": "- crf\n- 18\n"}.items():
        (cfg / f"{name}.yaml").write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(inputs=inputs, cfg=cfg) for a in args]
    result = cutout(inputs / "ok.mp4", "-o", out / "out.mp4", *FAST, *args)
    assert_one_line_error(result, *words)
    assert_nothing_left(out)


# --- checkpoints ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    marker = folder / "CODE_RAN"
    return rm.write_checkpoints(folder, marker), marker


@pytest.mark.parametrize("case, words", [
    ("text", ["not a PyTorch checkpoint (the file holds text)"]),
    ("truncated", ["truncated or corrupted"]),
    ("pickled_code", ["refused: loading it would run pickled code (io.open)"]),
    ("raw_pickle", ["refused: loading it would run pickled code"]),
    ("other_model", ["not a P3M-Net checkpoint", "none of its 9 keys"]),
    ("wrong_shapes", ["tensors have the wrong shape", "resnet.conv1.weight [1] != [64, 3, 7, 7]"]),
    ("missing", ["checkpoint not found"]),
])
def test_bad_checkpoints_are_refused_before_any_output(inputs, tmp_path, checkpoints, case, words):
    paths, marker = checkpoints
    weights = paths.get(case, tmp_path / "missing.pth")
    result = cutout(inputs / "ok.mp4", "-o", tmp_path / "out.mp4", "-w", weights, "-q")
    assert_one_line_error(result, *words)
    assert not marker.exists()                  # the pickled code never ran
    assert [p.name for p in tmp_path.iterdir()] == []


# --- a real terminal: no traceback ever reaches it --------------------------------------------------------

def _run(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("P3M_DEBUG", None)
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_real_process_bad_input_prints_one_line(inputs, tmp_path):
    proc = _run("-m", "stream.cli", "cutout", inputs / "text.mp4", "-o", tmp_path / "out.mp4", "-q")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: cannot open") and lines[1].startswith("  hint: "), lines
    assert_nothing_left(tmp_path)


def test_real_process_internal_error_names_the_stage_in_one_line(inputs, tmp_path):
    proc = _run(REPO / "tests/robustness/robust_cli.py", "cutout", inputs / "long.mp4", "-o", tmp_path / "out.mp4",
                "-m", "failing", "--infer-size", "64", "-q")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: internal error: matting failed: RuntimeError: boom", lines
    assert len(lines) == 2 and "P3M_DEBUG=1" in lines[1], lines
    assert "Traceback" not in proc.stderr
    assert_nothing_left(tmp_path)
