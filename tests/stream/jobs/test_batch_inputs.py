"""Which videos a batch finds, and where their outputs go."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.errors import P3MError
from stream.jobs.batch.inputs import find_videos


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """clips/ with videos at two depths, an image sequence, a hidden partial file and a text file."""
    root = tmp_path / "clips"
    touch(root / "a.mp4", root / "B.MOV", root / "day2" / "c.mkv", root / "shot" / "0001.png",
          root / "shot" / "0002.png", root / ".a.1234.part.mp4", root / "notes.txt", root / ".hidden" / "d.mp4")
    return root


def outputs(videos, base: Path) -> dict[str, str]:
    return {os.path.relpath(v.input, base): os.path.relpath(v.output, base) for v in videos}


def test_a_folder_is_searched_recursively_and_mirrored(tree: Path, tmp_path: Path) -> None:
    found = outputs(find_videos([str(tree)], tmp_path / "out"), tmp_path)
    assert found == {"clips/B.MOV": "out/B.mp4", "clips/a.mp4": "out/a.mp4",
                     "clips/day2/c.mkv": "out/day2/c.mp4", "clips/shot": "out/shot.mp4"}


def test_globs_lists_and_files_mirror_from_their_own_folders(tree: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("# to redo\nclips/day2/c.mkv\n\nclips/a.mp4\n")
    found = outputs(find_videos(["clips/**/*.mkv", "@list.txt", "clips/B.MOV"], "out"), Path("."))
    assert found == {"clips/day2/c.mkv": "out/day2/c.mp4",       # the glob's folder is clips/; listed again: once
                     "clips/a.mp4": "out/a.mp4", "clips/B.MOV": "out/B.mp4"}


def test_the_output_folder_inside_the_input_is_not_searched(tree: Path) -> None:
    touch(tree / "out" / "a.mp4")
    found = find_videos([str(tree)], tree / "out")
    assert not any("/out/" in v.input for v in found)


def test_name_templates(tree: Path, tmp_path: Path) -> None:
    videos = find_videos([str(tree / "a.mp4")], tmp_path / "o", name="{parent}/{stem}_{ext}.webm",
                         alpha_name="{stem}_alpha.mkv")
    assert os.path.relpath(videos[0].output, tmp_path) == "o/clips/a_mp4.webm"
    assert os.path.relpath(videos[0].alpha_out, tmp_path) == "o/a_alpha.mkv"


@pytest.mark.parametrize("args, message", [
    (dict(inputs=["nope/*.mp4"]), "no files match"),
    (dict(inputs=["missing.mp4"]), "no such file or folder"),
    (dict(inputs=["@missing.txt"]), "cannot read the list"),
    (dict(name="{title}.mp4"), "bad --name template"),
    (dict(name="../{stem}.mp4"), "leaves the output folder"),
    (dict(name="{stem}/%05d.png"), "is not a video file"),
])
def test_mistakes_are_one_line_errors(tree: Path, tmp_path: Path, monkeypatch, args: dict, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    inputs = args.pop("inputs", [str(tree)])
    with pytest.raises(P3MError, match=message):
        find_videos(inputs, tmp_path / "out", **args)


def test_two_videos_writing_one_file_are_refused(tree: Path, tmp_path: Path) -> None:
    touch(tree / "a.mov")
    with pytest.raises(P3MError, match=r"would both write .*a\.mp4") as e:
        find_videos([str(tree)], tmp_path / "out")
    assert "{ext}" in e.value.hint


def test_an_output_over_its_input_is_refused(tree: Path) -> None:
    with pytest.raises(P3MError, match="would replace the input"):
        find_videos([str(tree / "a.mp4")], tree)


def test_nothing_found_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "readme.txt")
    with pytest.raises(P3MError, match="no videos found"):
        find_videos([str(tmp_path / "in")], tmp_path / "out")
