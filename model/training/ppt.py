"""Face obfuscation for privacy-preserving training (PPT): make a P3M-10k-style training set from portraits.

`prepare_ppt` reads images + alphas (any layout `model.data.find_layout` knows), finds faces with the
bundled MediaPipe short-range detector, hides each padded face box with `model.faces.obscure` (pixelate or
blur, as the cut-out does), and writes the P3M-10k train layout: `blurred_image/` (obfuscated images),
`mask/` (the alphas, copied byte for byte) and `facemask/` (255 on the obfuscated boxes). Images where no face
was found are copied unchanged and listed in `no_face.txt`, for a person to check: a missed face is a privacy leak.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError
from model.faces import DEFAULT_STYLE, FaceDetector, check_style, clip, obscure, pad
from model.imageio import read_rgb
from model.training.data import find_layout, list_samples

IMAGE_FORMATS = ("keep", "png", "jpg")


@dataclass
class PPTSummary:
    """What `prepare_ppt` did."""

    out_dir: Path
    images: int = 0
    faces: int = 0
    no_face: list[str] = field(default_factory=list)

    def line(self) -> str:
        note = f" (listed in {self.out_dir / 'no_face.txt'}: check them by eye)" if self.no_face else ""
        return (f"prepare-ppt: {self.images} images, {self.faces} faces obfuscated, "
                f"{len(self.no_face)} images with no face found{note} -> {self.out_dir}")


def prepare_ppt(
    in_dir: str | Path,
    out_dir: str | Path,
    style: str = DEFAULT_STYLE,
    padding: float = 0.25,
    min_confidence: float = 0.5,
    tile_levels: int = 1,
    image_format: str = "keep",
    progress: Callable[[int, int, str], None] | None = None,
) -> PPTSummary:
    """Face-obfuscate a training set (see the module doc); returns the counts for the summary line.

    `style`: pixelate or blur; `padding`: fraction of the face box added on each side; `tile_levels`: see
    FaceDetector; `image_format`: keep the input's extension, or write png / jpg (quality 95); `progress(i, n, stem)`.
    """
    check_style(style)
    if image_format not in IMAGE_FORMATS:
        raise P3MError(f"unknown image format {image_format!r}", f"use one of {', '.join(IMAGE_FORMATS)}")
    if not 0 <= padding <= 2:
        raise P3MError(f"padding {padding} is outside [0, 2]", "a fraction of the face box, e.g. 0.25")
    samples = list_samples(find_layout(in_dir))
    out = Path(out_dir)
    if out.resolve() == Path(in_dir).resolve():
        raise P3MError(f"--out is the input folder {out}", "write the obfuscated set to a new folder")
    dirs = {name: out / name for name in ("blurred_image", "mask", "facemask")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    summary = PPTSummary(out)
    with FaceDetector(min_confidence=min_confidence, tile_levels=tile_levels) as detect:
        for i, sample in enumerate(samples):
            if progress is not None:
                progress(i, len(samples), sample.stem)
            rgb = read_rgb(sample.image)
            h, w = rgb.shape[:2]
            boxes = [b for b in (clip(pad(face, padding), (w, h)) for face in detect(rgb)) if b is not None]
            image = obscure(rgb, boxes, style)
            facemask = np.zeros((h, w), np.uint8)
            for x0, y0, x1, y1 in boxes:
                facemask[y0:y1, x0:x1] = 255
            suffix = sample.image.suffix.lower() if image_format == "keep" else f".{image_format}"
            _write(dirs["blurred_image"] / f"{sample.stem}{suffix}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            _write(dirs["facemask"] / f"{sample.stem}.png", facemask)
            shutil.copyfile(sample.alpha, dirs["mask"] / sample.alpha.name)
            summary.images += 1
            summary.faces += len(boxes)
            if not boxes:
                summary.no_face.append(sample.image.name)
    if summary.no_face:
        (out / "no_face.txt").write_text("".join(f"{name}\n" for name in summary.no_face))
    return summary


def _write(path: Path, image: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), image, params):
        raise P3MError(f"cannot write {path}", "check that the folder is writable")
