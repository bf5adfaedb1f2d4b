"""Photos through the cut-out: `p3m cutout photo.jpg -o out/` writes out/photo.png, and a folder of photos (of
any sizes) is cut out one by one, each under its own name, as `p3m image` names them. Each photo is one frame
through the same stages as a video's, on the caller's thread, with nothing carried from one photo to the next."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from model.errors import P3MError
from model.imageio import IMAGE_EXTENSIONS, read_rgb, write_alpha_png, write_png
from stream.frames import Frame
from stream.jobs.assembly import Assembly
from stream.jobs.config import CutoutConfig
from stream.sinks.paths import Confirm, Output, input_files, reserve_outputs
from stream.sources.files import list_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One photo and where its cut-out (and, with --alpha-out, its matte) goes."""

    path: str
    out: str
    alpha: str | None = None


def plan_photos(input: str, output: str, alpha_out: str | None = None) -> list[Photo] | None:
    """The photos of a photo job, or None when `input` → `output` is not one: an image or a folder of images
    into a folder (`out/`, an existing folder or a name without extension) as <stem>.png, or one image into a
    .png file; --alpha-out is then a folder for <stem>_alpha.png."""
    is_image = os.path.isfile(input) and input.lower().endswith(IMAGE_EXTENSIONS)
    if not (is_image or os.path.isdir(input)) or "%" in output:
        return None
    into_folder = output.endswith(("/", os.sep)) or os.path.isdir(output) or not Path(output).suffix
    if not into_folder and not (is_image and output.lower().endswith(".png")):
        return None
    files = [input] if is_image else list_images(input)
    stems = [Path(f).stem for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise P3MError(f"{input}: {', '.join(twice[:3])} would each be written twice (one name, two extensions)",
                       "rename one of them, or cut them out as a sequence: -o out/%05d.png")

    def where(folder: str | None, stem: str, suffix: str) -> str | None:
        return None if folder is None else os.path.join(folder, f"{stem}{suffix}.png")

    return [Photo(f, where(output, s, "") if into_folder else output, where(alpha_out, s, "_alpha"))
            for f, s in zip(files, stems)]


def cut_photos(photos: list[Photo], settings: CutoutConfig, *, overwrite: bool = False,
               confirm: Confirm | None = None, quiet: bool = False) -> tuple[str, float]:
    """Cut out each photo; returns the model's description and the seconds it took."""
    settings = settings.replace(smoothing=False)          # a photo has no neighbours to smooth with
    kind = "transparent" if settings.background == "transparent" else "composite"
    outputs = [Output(p.out, kind) for p in photos]
    outputs += [Output(p.alpha, "matte", "--alpha-out") for p in photos if p.alpha]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        assembly = Assembly(stack, settings)
        inputs = [input_files("the input", p.path) for p in photos]
        stack.enter_context(reserve_outputs(outputs, inputs, overwrite=overwrite, confirm=confirm))
        assembly.load()
        stages = assembly.one_by_one()
        for photo in photos:
            for stage in stages:          # nothing of the last photo (subject, faces) carries over
                getattr(stage, "reset", lambda: None)()
            frame = Frame(index=0, image=read_rgb(photo.path), pts=0)
            for stage in stages:
                frame = stage.process(frame)
            write_png(photo.out, frame.output)
            if photo.alpha is not None:
                write_alpha_png(photo.alpha, frame.alpha)
            if not quiet:
                log.info("%s -> %s", photo.path, photo.out)
        return assembly.matter.describe(), time.perf_counter() - started
