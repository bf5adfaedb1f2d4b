"""`p3m batch` on the local engine: a folder of clips (one damaged, one already done), the rerun that
finishes the rest, Ctrl-C in a real process, the checks made before any work, and the worker's model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.batch_media import DAMAGED, GOOD, all_files, check_output, make_clips
from helpers.media import write_clip

import stream
from model.errors import P3MError
from stream.cli.main import main
from stream.jobs.batch.inputs import Video
from stream.jobs.batch.worker import ModelError, close_models, cut_one, model_for
from stream.jobs.config import load_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clips(tmp_path_factory.mktemp("clips"))


def test_a_folder_with_a_damaged_clip_and_a_done_one_then_the_rerun(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stream.cutout(clips / "done.mp4", tmp_path / "done.mp4", quiet=True)
    out.mkdir()
    os.replace(tmp_path / "done.mp4", out / "done.mp4")
    done_before = (out / "done.mp4").stat().st_mtime_ns

    run = CliRunner().invoke(main, ["batch", str(clips), "-o", str(out), "--workers", "2", "-q",
                                    "--report", str(out / "report.json")])
    assert run.exit_code == 1, run.output
    report = json.loads((out / "report.json").read_text())
    status = {os.path.relpath(v["input"], clips): v["status"] for v in report["videos"]}
    assert status == {**{name: "done" for name in GOOD}, "done.mp4": "skipped", DAMAGED: "failed"}
    broken = next(v for v in report["videos"] if v["status"] == "failed")
    assert "cannot open" in broken["error"] and "\n" not in broken["error"]
    assert f"failed: {clips / DAMAGED}: cannot open" in run.output        # reported as it came, one line
    for name in GOOD:
        check_output(out / name)
    assert (out / "done.mp4").stat().st_mtime_ns == done_before
    assert all_files(out) == {*GOOD, "report.json"}                       # no partial file, nothing for the damaged one
    finished = {name: (out / name).stat().st_mtime_ns for name in GOOD}

    again = stream.batch(clips, out, workers=2, quiet=True)                # the same command again
    assert [v.input for v in again.failed] == [str(clips / DAMAGED)]
    assert again.done == [] and len(again.skipped) == len(GOOD) and again.exit_code == 1
    assert {name: (out / name).stat().st_mtime_ns for name in GOOD} == finished


def test_ctrl_c_keeps_the_finished_videos_and_no_partial_file(tmp_path: Path) -> None:
    clips, out = tmp_path / "clips", tmp_path / "out"
    clips.mkdir()
    write_clip(clips / "a_short.mp4", frames=10)                  # sorted first: done while the others run
    for name in ("long1.mp4", "long2.mp4"):
        write_clip(clips / name, frames=300, width=160, height=120)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "stream.cli", "batch", str(clips), "-o", str(out),
                                "--workers", "2", "-q"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "a_short.mp4").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the batch ended before Ctrl-C"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "cancelled" in err
    files = all_files(out)
    assert "a_short.mp4" in files and files < {"a_short.mp4", "long1.mp4", "long2.mp4"}, (files, err)
    for name in files:                                      # what is there is finished; no partial file
        check_output(out / name, frames=10 if name == "a_short.mp4" else 300)


@pytest.mark.parametrize("options, message", [
    (dict(background="transparent"), "cannot write a transparent video to '.mp4'"),
    (dict(report="r.txt"), "name it report.json or report.csv"),
    (dict(engine="spark"), "unknown engine"),
    (dict(workers=0), "not a positive number"),
    (dict(ray_address="127.0.0.1:6379"), "--ray-address is for the Ray engine"),
    (dict(gpus_per_video=1), "asks for GPUs, and no CUDA GPU is used here"),
])
def test_mistakes_stop_before_any_work(clips: Path, tmp_path: Path, monkeypatch, options: dict, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(P3MError, match=message):
        stream.batch(clips, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_ray_engine_without_ray_says_how_to_install_it(clips: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)          # as where the extra is not installed
    with pytest.raises(P3MError, match="needs Ray") as e:
        stream.batch(clips / "a.mp4", tmp_path / "out", engine="ray")
    assert "p3m-stream[ray]" in e.value.hint


def test_a_model_that_does_not_load_stops_the_batch(clips: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="mediapipe"):
        stream.batch(clips / "day2", tmp_path / "out", model="mediapipe", precision="fp16", workers=1)


def test_a_worker_loads_its_model_once_and_keeps_it(clips: Path, tmp_path: Path) -> None:
    settings = load_config()
    try:
        first = cut_one(Video(str(clips / "a.mp4"), str(tmp_path / "a.mp4")), settings)
        matter = model_for(settings)
        second = cut_one(Video(str(clips / "b.mp4"), str(tmp_path / "b.mp4")), settings)
        assert (first.status, second.status) == ("done", "done"), (first.error, second.error)
        assert model_for(settings) is matter
        assert matter(np.zeros((48, 64, 3), np.uint8)).shape == (48, 64)    # still open after two jobs
    finally:
        close_models()                  # this process is not a worker: its threads must not outlive the test
    check_output(tmp_path / "b.mp4")


def test_a_worker_process_that_dies_is_replaced_and_its_video_tried_again(tmp_path: Path) -> None:
    clips, out = tmp_path / "clips", tmp_path / "out"
    clips.mkdir()
    write_clip(clips / "long.mp4", frames=150, width=160, height=120)
    killed: list[int] = []

    def kill_the_worker_once_it_writes() -> None:          # as the OOM killer would, mid-video
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if out.is_dir() and any(name.endswith(".part.mp4") for name in os.listdir(out)):
                workers = _grandchildren(os.getpid())           # forkserver → its workers
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed.append(workers[0])
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_the_worker_once_it_writes)
    watcher.start()
    try:
        report = stream.batch(clips, out, workers=1, quiet=True)
    finally:
        watcher.join()
    assert killed
    assert [v.status for v in report.videos] == ["done"], report.videos
    check_output(out / "long.mp4", frames=150)


def _grandchildren(pid: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    children = {p for p, parent in parents.items() if parent == pid}
    return sorted(p for p, parent in parents.items() if parent in children)


def test_overwrite_cuts_a_finished_video_again(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "c.mp4").write_bytes(b"an older cut-out")
    assert stream.batch(clips / "day2" / "c.mp4", out, quiet=True).skipped
    report = stream.batch(clips / "day2" / "c.mp4", out, overwrite=True, workers=1, quiet=True)
    assert [v.status for v in report.videos] == ["done"], report.videos
    check_output(out / "c.mp4")
