"""Output paths through `p3m cutout` and `p3m live` (stream/sinks/paths.py): never over an input, never over an
existing output without -y, never two jobs on one output, and nothing removed that the job did not write."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner, Result
from helpers import robust_media as rm

from model.errors import P3MError
from stream.cli.main import main
from stream.sinks.paths import parse_output, reserve_outputs

FAST = ["-m", "key", "--infer-size", "64", "--preset", "ultrafast", "-q"]


def cutout(*args: object, cwd: Path | None = None, stdin: str | None = None) -> Result:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd or old)
    try:
        return runner.invoke(main, ["cutout", *FAST, *map(str, args)], input=stdin)   # args override FAST
    finally:
        os.chdir(old)


def live(*args: object) -> Result:
    return CliRunner().invoke(main, ["live", *map(str, args), "-m", "key", "--infer-size", "64", "--duration", "5"])


def error_line(result: Result) -> str:
    """The one `error:` line of a refused job (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and all(line.startswith("  hint: ") for line in lines[1:]), lines
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) by name, with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def work(inputs: Path, tmp_path: Path) -> Path:
    """A folder with a clip, a background video, a background image and a 6-frame PNG sequence."""
    shutil.copy(inputs / "ok.mp4", tmp_path / "clip.mp4")
    shutil.copy(inputs / "thirty.mp4", tmp_path / "bg.mp4")
    cv2.imwrite(str(tmp_path / "bg.png"), rm.image(3))
    (tmp_path / "seq").mkdir()
    for i in range(6):
        cv2.imwrite(str(tmp_path / "seq" / f"{i:06d}.png"), rm.image(i))
    return tmp_path


# --- never over an input --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["seq", "-o", "seq/%06d.png"], "would write over the input seq/000000.png"),
    (["seq", "-o", "seq/out_%03d.png"], "into the folder of the input"),
    (["seq", "-o", "seq/"], "over the input"),
    (["seq/%06d.png", "-o", "seq/%06d.png"], "over the input"),
    (["clip.mp4", "-o", "bg.mp4", "-b", "bg.mp4"], "-o bg.mp4 would write over the background bg.mp4"),
    (["clip.mp4", "-o", "out.mp4", "-b", "bg.mp4", "--alpha-out", "bg.mp4"], "--alpha-out bg.mp4 would write over"),
    (["clip.mp4", "-o", "out.mp4", "--alpha-out", "clip.mp4"], "--alpha-out clip.mp4 would write over the input"),
    (["clip.mp4", "-o", "frames/%05d.png", "-b", "frames/00001.png"], "over the background"),
    (["clip.mp4", "-o", "out.mp4", "--alpha-out", "out.mp4"], "--alpha-out out.mp4 writes the same files as -o"),
    (["clip.mp4", "-o", "o/%05d.png", "--alpha-out", "o/%05d.png"], "writes the same files"),
    (["clip.mp4", "-o", "o/%05d.png", "--alpha-out", "o/"], "writes the same files"),
])
def test_an_output_over_an_input_or_another_output_is_refused_and_nothing_changes(work, args, words):
    (work / "frames").mkdir()
    cv2.imwrite(str(work / "frames" / "00001.png"), rm.image(1))
    before = digest(work)
    line = error_line(cutout(*args, "-y", cwd=work))      # -y allows replacing outputs, never inputs
    assert words in line
    assert digest(work) == before


def test_the_live_recording_follows_the_same_rules(work):
    assert "would write over the background" in error_line(live("--camera", work / "clip.mp4", "-o", work / "bg.mp4",
                                                                 "-b", work / "bg.mp4"))
    before = digest(work)
    assert "would write over the input" in error_line(live("--camera", work / "clip.mp4", "-o", work / "clip.mp4"))
    (work / "rec.mp4").write_bytes(b"an earlier recording")
    assert "exists" in error_line(live("--camera", work / "clip.mp4", "-o", work / "rec.mp4"))
    assert "no extension" in error_line(live("--camera", work / "clip.mp4", "--alpha-out", work / "matte"))
    assert digest(work) == {**before, "rec.mp4": hashlib.sha1(b"an earlier recording").hexdigest()}


# --- the path itself --------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, words", [
    ("", "-o is empty"),
    ("   ", "-o is empty"),
    ("out/noext", "no extension"),
    ("out.png", "needs a frame-number pattern"),
    ("out/%05d_%s.png", "not a frame-number pattern"),
    ("out/100%_%05d.png", "not a frame-number pattern"),
    ("out/%05d_%05d.png", "not a frame-number pattern"),
    ("out%/%05d.png", "a % in the folder name"),
    ("out/%05d.jpg", "must end in .png"),
    ("rtmp://127.0.0.1/live/key", "not a URL"),
])
def test_bad_output_paths_are_refused_before_the_model_loads(work, output, words, monkeypatch):
    monkeypatch.setenv("P3M_TEST_MARKER", str(work / "model-loaded"))     # the "loading" double touches it
    before = digest(work)
    assert words in error_line(cutout(work / "clip.mp4", "-o", output, "-m", "loading", cwd=work))
    assert digest(work) == before and not (work / "out").exists()


def test_a_literal_percent_is_written_as_a_double_percent(work):
    result = cutout("clip.mp4", "-o", "out/100%%_%03d.png", cwd=work)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (work / "out").iterdir())[:2] == ["100%_000.png", "100%_001.png"]


def test_a_missing_output_folder_is_created_and_a_failed_job_removes_only_what_it_made(work):
    result = cutout("clip.mp4", "-o", "new/dir/out.mp4", cwd=work)
    assert result.exit_code == 0, result.output
    assert len(rm.decode(work / "new" / "dir" / "out.mp4")) == 20
    assert sorted(os.listdir(work / "new" / "dir")) == ["out.mp4"]          # no lock or probe left
    result = cutout("clip.mp4", "-o", "other/deeper/out.mp4", "-b", "missing.jpg", cwd=work)
    assert result.exit_code == 1 and not (work / "other").exists()            # refused before any folder is made
    result = CliRunner().invoke(main, ["cutout", str(work / "clip.mp4"), "-o", str(work / "made/here/out.mp4"),
                                       "-m", "failing", "--infer-size", "64", "-q"])
    assert result.exit_code == 1 and not (work / "made").exists()            # the job failed: its folders go


# --- existing outputs ------------------------------------------------------------------------------------

def test_an_existing_output_is_refused_without_y_and_replaced_with_it(work):
    (work / "out.mp4").write_bytes(b"keep me")
    assert "-o out.mp4 exists" in error_line(cutout("clip.mp4", "-o", "out.mp4", cwd=work))
    assert (work / "out.mp4").read_bytes() == b"keep me"
    assert cutout("clip.mp4", "-o", "out.mp4", "--overwrite", cwd=work).exit_code == 0
    assert len(rm.decode(work / "out.mp4")) == 20


def test_existing_frames_of_a_png_pattern_are_refused_without_y(work):
    (work / "frames").mkdir()
    (work / "frames" / "00003.png").write_bytes(b"an earlier frame")
    (work / "frames" / "notes.txt").write_text("mine")
    line = error_line(cutout("clip.mp4", "-o", "frames/%05d.png", cwd=work))
    assert "1 frame exist" in line and "frames/00003.png" in line
    assert cutout("clip.mp4", "-o", "frames/%06d.png", cwd=work).exit_code == 0     # other names: no conflict
    assert cutout("clip.mp4", "-o", "frames/%05d.png", "-y", cwd=work).exit_code == 0
    assert (work / "frames" / "notes.txt").read_text() == "mine"


def test_y_over_a_longer_sequence_leaves_only_this_jobs_frames(work):
    frames = len(rm.decode(work / "clip.mp4"))
    (work / "frames").mkdir()
    for i in range(frames + 3):
        (work / "frames" / f"{i:05d}.png").write_bytes(b"an earlier job's frame")
    assert cutout("clip.mp4", "-o", "frames/%05d.png", "-y", cwd=work).exit_code == 0
    assert sorted(p.name for p in (work / "frames").iterdir()) == [f"{i:05d}.png" for i in range(frames)]


def test_on_a_terminal_the_user_is_asked(work, monkeypatch):
    (work / "out.mp4").write_bytes(b"keep me")
    monkeypatch.setattr("stream.cli.options.stdin_is_terminal", lambda: True)
    refused = cutout("clip.mp4", "-o", "out.mp4", cwd=work, stdin="n\n")
    question, *rest = refused.stderr.splitlines()
    assert question == "out.mp4 exists. Overwrite? [y/N]: n" and refused.exit_code == 1
    assert rest[0] == "error: -o out.mp4 exists"
    assert (work / "out.mp4").read_bytes() == b"keep me"
    accepted = cutout("clip.mp4", "-o", "out.mp4", cwd=work, stdin="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(rm.decode(work / "out.mp4")) == 20


def test_a_failed_job_over_existing_frames_removes_only_the_frames_it_created(work):
    (work / "frames").mkdir()
    for i in (0, 1):
        (work / "frames" / f"{i:05d}.png").write_bytes(b"an earlier frame")
    result = CliRunner().invoke(main, ["cutout", str(work / "clip.mp4"), "-o", str(work / "frames/%05d.png"),
                                       "-m", "failing", "--infer-size", "64", "-q", "-y"])
    assert result.exit_code == 1
    assert sorted(os.listdir(work / "frames")) == ["00000.png", "00001.png"]   # the job's own frames removed


# --- two jobs, one output ------------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [
    ("out.mp4", "out.mp4"),
    ("frames/%05d.png", "frames/%05d.png"),
    ("frames/%05d.png", "frames/"),       # the folder's own pattern is %06d: another name, but checked alike
])
def test_a_second_job_on_an_output_being_written_is_refused(work, first, second):
    held = reserve_outputs([parse_output(str(work / first), "composite")], [], overwrite=True)
    try:
        if first == second:
            line = error_line(cutout("clip.mp4", "-o", second, "-y", cwd=work))
            assert "is being written by another p3m job" in line and f"pid {os.getpid()}" in line
        else:
            assert cutout("clip.mp4", "-o", second, "-y", cwd=work).exit_code == 0
    finally:
        held.release()
    assert not [p for p in work.rglob(".*p3m-lock")]                  # the lock files went with the locks
    assert cutout("clip.mp4", "-o", first, "-y", cwd=work).exit_code == 0


def test_a_released_lock_can_be_taken_again_and_stays_exclusive(work):
    out = parse_output(str(work / "out.mp4"), "composite")
    first = reserve_outputs([out], [])
    first.release()
    second = reserve_outputs([out], [])
    try:
        with pytest.raises(P3MError, match="being written"):
            reserve_outputs([out], [], overwrite=True)
    finally:
        second.release()
