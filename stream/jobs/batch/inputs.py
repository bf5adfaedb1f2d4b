"""What a batch cuts: the videos that files, folders, globs and `@list.txt` files name, and where each one's
output goes (the input tree mirrored under the output folder, named by a template)."""
from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.errors import P3MError
from model.imageio import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                    ".wmv", ".flv", ".3gp", ".mxf", ".ogv")
DEFAULT_NAME = "{stem}.mp4"
NAME_FIELDS = ("stem", "ext", "parent")


@dataclass(frozen=True)
class Video:
    """One input (a video file or an image-sequence folder) and the file(s) its cut-out goes to."""

    input: str
    output: str
    alpha_out: str | None = None      # the matte video beside it, when asked

    def finished(self) -> bool:
        """Its outputs exist: the sinks write them under a temporary name and rename them when complete."""
        return all(os.path.isfile(p) for p in (self.output, self.alpha_out) if p is not None)


def find_videos(inputs: Sequence[str], output_dir: str | Path, *, name: str = DEFAULT_NAME,
                alpha_name: str | None = None) -> list[Video]:
    """The videos `inputs` name, in order, each once, with outputs under `output_dir`; P3MError for a missing
    input, a bad template or two videos that would write one file."""
    check_template(name, "--name")
    if alpha_name is not None:
        check_template(alpha_name, "--alpha-out")
    out = Path(output_dir)
    videos: dict[str, Video] = {}
    for path, root in _expand(inputs, skip=out):
        key = os.path.realpath(path)
        if key not in videos:
            videos[key] = _video(path, root, out, name, alpha_name)
    if not videos:
        raise P3MError(f"no videos found in {' '.join(inputs)}",
                       f"give video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS[:5])}, ...), folders of them, "
                       "image-sequence folders, globs or @list.txt")
    _check_distinct(list(videos.values()))
    return list(videos.values())


def check_template(template: str, option: str) -> None:
    """A name template uses only {stem}, {ext} and {parent}, stays under the output folder and names a video file."""
    try:
        sample = template.format(stem="a", ext="mp4", parent="p")
    except (KeyError, IndexError, ValueError) as e:
        raise P3MError(f"bad {option} template {template!r}: {e}",
                       f"use the fields {', '.join('{' + f + '}' for f in NAME_FIELDS)}, e.g. {DEFAULT_NAME}") from None
    parts = Path(sample).parts
    if Path(sample).is_absolute() or ".." in parts:
        raise P3MError(f"{option} template {template!r} leaves the output folder",
                       f"use a relative name like {DEFAULT_NAME}")
    if "%" in sample or not Path(sample).suffix:
        raise P3MError(f"{option} template {template!r} is not a video file",
                       "a batch writes video files (.mp4, .mov, .mkv, .webm): a partly written PNG sequence "
                       "would look finished to the next run")


def _expand(inputs: Sequence[str], skip: Path) -> Iterator[tuple[Path, Path]]:
    """(input, the folder its output path mirrors from) for each input argument."""
    for spec in inputs:
        if spec.startswith("@"):
            yield from _expand(_read_list(Path(spec[1:])), skip)
        elif os.path.exists(spec):
            yield from _expand_path(Path(spec), skip)
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise P3MError(f"no files match {spec}", "check the pattern (quote it so the shell leaves it to p3m)")
            root = _glob_root(spec)
            for match in matches:                 # every match mirrors from the pattern's fixed folder
                for path, _ in _expand_path(Path(match), skip):
                    yield path, root
        else:
            raise P3MError(f"no such file or folder: {spec}", "INPUTS are video files, folders, globs or @list.txt")


def _read_list(listing: Path) -> list[str]:
    """The paths a list file names, one a line (blank lines and # comments skipped), relative to its folder."""
    try:
        lines = listing.read_text().splitlines()
    except OSError as e:
        raise P3MError(f"cannot read the list {listing}: {e.strerror}",
                       "give @FILE with one input path a line") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    nested = [e for e in entries if e.startswith("@")]
    if nested:
        raise P3MError(f"{listing} names another list ({nested[0]})", "a list names videos, folders or globs")
    return [e if os.path.isabs(e) else str(listing.parent / e) for e in entries]


def _expand_path(path: Path, skip: Path) -> Iterator[tuple[Path, Path]]:
    if path.is_file():
        yield path, path.parent
        return
    if _holds_images(path):                    # the folder itself is an image sequence
        yield path, path.parent
    for folder, dirs, files in os.walk(path):
        here = Path(folder)
        # Hidden entries (the sinks' .part files among them) and the output folder are never inputs.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _same(here / d, skip))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield here / name, path
        for d in dirs:
            if _holds_images(here / d):
                yield here / d, path


def _holds_images(folder: Path) -> bool:
    try:
        return any(not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS and e.is_file()
                   for e in os.scandir(folder))
    except OSError:
        return False


def _glob_root(pattern: str) -> Path:
    """The part of a glob before its first wildcard: the folder its matches mirror from."""
    parts = Path(pattern).parts
    fixed = parts[:next(i for i, p in enumerate(parts) if glob.has_magic(p))]
    return Path(*fixed) if fixed else Path(".")


def _video(path: Path, root: Path, out: Path, name: str, alpha_name: str | None) -> Video:
    folder = out / os.path.relpath(path.parent, root)
    fields = {"stem": path.stem if path.is_file() else path.name, "ext": path.suffix[1:],
              "parent": path.parent.resolve().name}
    output = os.path.normpath(folder / name.format(**fields))
    alpha = os.path.normpath(folder / alpha_name.format(**fields)) if alpha_name is not None else None
    return Video(str(path), output, alpha)


def _check_distinct(videos: list[Video]) -> None:
    """No output written twice, and none over an input."""
    owner: dict[str, str] = {}
    inputs = {os.path.realpath(v.input): v.input for v in videos}
    for video in videos:
        for output in (video.output, video.alpha_out):
            if output is None:
                continue
            key = os.path.realpath(output)
            if key in inputs:
                raise P3MError(f"the output {output} would replace the input {inputs[key]}",
                               "choose another output folder (-o) or --name")
            if key in owner:
                raise P3MError(f"{owner[key]} and {video.input} would both write {output}",
                               "give --name a template that tells them apart, e.g. '{stem}_{ext}.mp4'")
            owner[key] = video.input


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
