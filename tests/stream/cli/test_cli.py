"""The `p3m` command: help texts, image matting parity through the CLI, evaluation, one-line errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from stream.cli.main import main
from stream.jobs.config import CutoutConfig, LiveConfig, load_live_config

PORTRAIT = "p_015cd10e"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("command, words", [
    ([], ["image", "eval", "cutout", "demo"]),
    (["image"], ["--weights", "--strategy", "hybrid", "_alpha.png"]),
    (["eval"], ["--pred", "--gt", "--trimap", "--json", "SAD"]),
    (["cutout"], ["--background", "transparent", "--alpha-out", "--crf", "--config", "Ctrl-C"]),
])
def test_help_is_useful(command, words):
    result = run(*command, "--help")
    assert result.exit_code == 0
    for word in words:
        assert word in result.output


def options(command: str) -> dict[str, click.Parameter]:
    return {p.name: p for p in main.commands[command].params}


def test_cutout_and_live_declare_their_shared_options_once():
    cutout, live = options("cutout"), options("live")
    # Each command's own wording; --duration: how much of the input (cutout), how long to run (live).
    shared = set(cutout) & set(live) - {"config_file", "output", "quiet", "duration"}
    assert shared == {"model", "weights", "device", "precision", "infer_size", "upsample", "subjects", "smoothing",
                      "smoothing_strength", "background", "foreground_estimation", "alpha_out", "crf", "preset",
                      "odd_size", "blur_faces", "no_blur_faces", "verbose",
                      "blur_style", "face_model", "overwrite", "threshold", "erode", "dilate", "feather", "spill"}
    for name in sorted(shared):
        mine, theirs = cutout[name].to_info_dict(), live[name].to_info_dict()
        helps = [re.sub(r"default [^);]+", "default …", info.pop("help") or "") for info in (mine, theirs)]
        assert mine == theirs, name                # flags, type, choices, default
        assert helps[0] == helps[1], name          # one wording; only the defaults named differ


@pytest.mark.parametrize("command, config", [("cutout", CutoutConfig), ("live", LiveConfig)])
def test_option_choices_are_the_configs(command, config):
    choices = {name: p.type.choices for name, p in options(command).items() if isinstance(p.type, click.Choice)}
    assert choices and {name: tuple(c) for name, c in choices.items()} == {n: tuple(config.CHOICES[n]) for n in choices}


@pytest.mark.parametrize("command, defaults", [("cutout", CutoutConfig()), ("live", load_live_config())])
def test_help_names_the_defaults_each_command_runs_with(command, defaults):
    helps = {name: getattr(p, "help", None) for name, p in options(command).items()}
    for name in ("infer_size", "upsample", "smoothing_strength", "background", "crf", "preset", "blur_style",
                 "face_model"):
        value = getattr(defaults, name)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        assert f"default {shown}" in helps[name], name


def test_help_loads_neither_torch_nor_mediapipe():
    # `p3m --help` answered in ~2 s while the CLI's first import (model.errors) loaded torch; now ~0.3 s.
    code = "import sys; from stream.cli import main; print([m for m in ('torch', 'mediapipe') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_image_command_matches_the_official_resize_result(shared, seed3_pth, tmp_path):
    image = shared / "media" / "portraits" / "images" / f"{PORTRAIT}.jpg"
    result = run("image", image, "--weights", seed3_pth, "--strategy", "resize", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    mine = cv2.imread(str(tmp_path / f"{PORTRAIT}_alpha.png"), cv2.IMREAD_UNCHANGED).astype(int)
    reference = cv2.imread(str(shared / "p3m" / "parity" / f"{PORTRAIT}_resize_seed3.png"), cv2.IMREAD_UNCHANGED)
    assert mine.shape == reference.shape
    assert (np.abs(mine - reference) <= 1).mean() >= 0.995
    rgba = cv2.imread(str(tmp_path / f"{PORTRAIT}.png"), cv2.IMREAD_UNCHANGED)        # the cut-out keeps the name
    assert rgba.shape == (*mine.shape, 4)
    np.testing.assert_array_equal(rgba[..., 3], mine)
    colour = cv2.imread(str(image))
    opaque = mine == 255
    assert np.abs(rgba[..., :3][opaque].astype(int) - colour[opaque]).max() == 0   # straight alpha


def test_eval_prints_the_table_and_writes_json(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(), gt.mkdir()
    truth = np.zeros((20, 30), np.uint8)
    truth[5:15, 10:20] = 255
    guess = truth.copy()
    guess[5:15, 10] = 0                                  # 10 pixels wrong by 1.0 each
    cv2.imwrite(str(gt / "a.png"), truth)
    cv2.imwrite(str(pred / "a_alpha.png"), guess)
    out = tmp_path / "scores.json"
    result = run("eval", "--pred", pred, "--gt", gt, "--json", out)
    assert result.exit_code == 0, result.output
    assert "SAD" in result.output and "CONN" in result.output
    scores = json.loads(out.read_text())
    assert abs(scores["mean"]["SAD"] - 0.010) < 1e-9
    assert abs(scores["mean"]["MSE"] - 10 / 600) < 1e-9


@pytest.mark.parametrize("args, words", [
    (["image", "nope.jpg", "--weights", "w.pth", "-o", "out"], "not found"),
    (["cutout", "missing.mp4", "-o", "out.mp4"], "missing.mp4"),
    (["cutout", "{notes}", "-o", "out.mp4"], "notes"),
    (["cutout", "{clip}", "-o", "out.avi"], ".avi"),
    (["cutout", "{clip}", "-o", "out.mp4", "--background", "transparent"], "transparent"),
    (["cutout", "{clip}", "-o", "out.mp4", "--weights", "{notes}"], "notes"),
    (["cutout", "{clip}", "-o", "out.mp4", "--config", "no_such_preset"], "no_such_preset"),
    (["eval", "--pred", "nope", "--gt", "nope"], "nope"),
])
def test_user_mistakes_are_one_clear_line(tmp_path, monkeypatch, args, words):
    import av

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").write_text("not a video or a checkpoint\n")
    with av.open(str(tmp_path / "clip.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        c.mux(s.encode())
    args = [a.format(notes=tmp_path / "notes", clip=tmp_path / "clip.mp4") for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    first = result.output.strip().splitlines()[0]
    assert first.startswith("error: ") and words in first
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_image_never_writes_over_its_inputs_nor_two_outputs_over_one_another(tmp_path):
    """`p3m image` names outputs by stems: PNG photos cut out into their own folder, or a.jpg beside a.png,
    are refused before anything is written."""
    photos = tmp_path / "photos"
    photos.mkdir()
    picture = np.full((32, 32, 3), 128, np.uint8)
    cv2.imwrite(str(photos / "a.png"), picture)
    before = (photos / "a.png").read_bytes()
    result = CliRunner().invoke(main, ["image", str(photos), "-o", str(photos)])
    assert result.exit_code == 1 and "would write over the input" in result.output, result.output
    assert (photos / "a.png").read_bytes() == before and sorted(p.name for p in photos.iterdir()) == ["a.png"]
    cv2.imwrite(str(photos / "a.jpg"), picture)
    result = CliRunner().invoke(main, ["image", str(photos), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "would both be written as a.png" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_version():
    result = CliRunner().invoke(main, ["--version"], prog_name="p3m")
    assert result.exit_code == 0
    assert re.fullmatch(r"p3m, version \d+\.\d+\.\d+\S*\n", result.output)


def test_shell_completion_script_and_answers():
    script = CliRunner().invoke(main, [], prog_name="p3m", env={"_P3M_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_p3m_completion()" in script.output and "complete -o" in script.output
    answer = CliRunner().invoke(main, [], prog_name="p3m", env={
        "_P3M_COMPLETE": "bash_complete", "COMP_WORDS": "p3m cutout --odd", "COMP_CWORD": "2"})
    assert answer.output.splitlines() == ["plain,--odd-size"]


@pytest.mark.parametrize("args", [["-v", "cutout"], ["cutout", "-v"], ["cutout"]])
def test_verbose_on_the_group_or_the_command_shows_debug_lines(tmp_path, args):
    from helpers.media import write_clip

    clip, out, matte = write_clip(tmp_path / "in.mp4", frames=3, audio=False), tmp_path / "out.mp4", tmp_path / "m.mkv"
    result = CliRunner().invoke(main, [*args, str(clip), "-o", str(out), "-m", "mediapipe", "--infer-size", "500",
                                       "--alpha-out", str(matte)])
    assert result.exit_code == 0, result.output
    verbose = "-v" in args
    assert ("DEBUG: hardware encoders unavailable" in result.stderr) is verbose, result.stderr
    assert ("unavailable" in result.stderr) is verbose                     # the probe's reason: debug only
    assert "steps of 32" not in result.stderr                              # the bundled model takes any size
    assert result.stderr.splitlines()[-1].endswith(f"-> {out} and {matte}")
