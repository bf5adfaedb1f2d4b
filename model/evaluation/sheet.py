"""A contact sheet of an evaluation, so a person can see what the numbers say: one row per image, worst MAD
first, image | predicted matte | reference | error map (|pred − ref|, dark = right, bright = wrong)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError
from model.evaluation.evaluate import EvalReport
from model.imageio import IMAGE_EXTENSIONS
from model.tiles import labelled_row, write_sheet

IMAGE_DIRS = ("blurred_image", "original_image", "images", "image")   # where a data set keeps its images
COLUMNS = ("image", "matte", "reference", "error")


def find_image_dir(gt_dir: str | Path) -> Path | None:
    """The images beside a ground-truth folder: a P3M-500 root's, or a sibling `images/` (or the like)."""
    gt_dir = Path(gt_dir)
    for root in (gt_dir, gt_dir.parent):
        for name in IMAGE_DIRS:
            if (root / name).is_dir() and root / name != gt_dir:
                return root / name
    return None


def contact_sheet(report: EvalReport, image_dir: str | Path, out: str | Path, *, rows: int | None = None,
                  tile_height: int = 240, key: str = "MAD") -> list[str]:
    """Write the sheet of `report`'s images (the `rows` worst by `key`, else all) to the PNG `out`; returns the
    stems in the order drawn."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise P3MError(f"image folder not found: {image_dir}", "give --images, the folder of the evaluated images")
    if not report.files:
        raise P3MError("this evaluation has no files to draw", "score a folder of mattes (p3m eval --pred DIR)")
    order = sorted(report.per_image, key=lambda stem: -report.per_image[stem][key])[:rows]
    write_sheet([_row(stem, report, image_dir, tile_height, key) for stem in order], out)
    return order


def _row(stem: str, report: EvalReport, image_dir: Path, height: int, key: str) -> np.ndarray:
    """One image's four tiles side by side, with its name and score above them."""
    pred_path, gt_path = report.files[stem]
    image_path = next((p for p in sorted(image_dir.glob(f"{stem}.*")) if p.suffix.lower() in IMAGE_EXTENSIONS), None)
    if image_path is None:
        raise P3MError(f"no image for '{stem}' in {image_dir}", "give --images, the folder of the evaluated images")
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    pred, ref = (cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (pred_path, gt_path))
    if image is None or pred is None or ref is None:
        raise P3MError(f"cannot read the files of '{stem}'", "are they valid PNG/JPEG files?")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    error = np.abs(pred.astype(np.int16) - ref.astype(np.int16)).astype(np.uint8)
    error_map = cv2.cvtColor(cv2.applyColorMap(error, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    gray = [cv2.cvtColor(a, cv2.COLOR_GRAY2RGB) for a in (pred, ref)]
    text = f"{stem}  {key} {report.per_image[stem][key]:.4f}    " + " | ".join(COLUMNS)
    return labelled_row([image, *gray, error_map], text, height)
