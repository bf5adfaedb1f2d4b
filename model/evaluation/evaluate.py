"""Evaluate a folder of predicted mattes against ground truth, as the official IJCV `core/eval.py` does.

PNGs are read as 8-bit grayscale and divided by 255 in float32 (the official reader), trimaps are
0/128/255. `gt_dir` is either a plain folder of masks or a P3M-500-P/NP root holding `mask/` and
`trimap/` (beside `blurred_image/` or `original_image/`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError
from model.evaluation.metrics import compute_all

# What our `p3m image` appends to a matte's name; the official test scripts write plain `<stem>.png`.
PRED_SUFFIXES = ("_alpha",)
GT_EXTENSIONS = (".png", ".jpg", ".jpeg")  # in order of preference: PNG is lossless
_FORMATS = {"MSE": ".6f", "MAD": ".6f", "MSE_TRIMAP": ".6f", "MAD_TRIMAP": ".6f"}  # others: ".4f"


@dataclass(frozen=True)
class EvalReport:
    """Per-image metrics (by GT stem, sorted) and their means over the images."""

    per_image: dict[str, dict[str, float]]
    mean: dict[str, float]
    pred_dir: Path
    mask_dir: Path
    trimap_dir: Path | None
    gt_without_prediction: tuple[str, ...] = ()  # evaluated on a subset: these GT stems were not scored
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # stem -> (prediction, GT mask)

    @property
    def count(self) -> int:
        return len(self.per_image)

    def to_dict(self) -> dict:
        """JSON-ready dict; undefined values (NaN, e.g. a trimap with no unknown pixels) become null."""
        def clean(values: dict[str, float]) -> dict[str, float | None]:
            return {k: (v if math.isfinite(v) else None) for k, v in values.items()}

        return {
            "pred_dir": str(self.pred_dir),
            "mask_dir": str(self.mask_dir),
            "trimap_dir": None if self.trimap_dir is None else str(self.trimap_dir),
            "count": self.count,
            "mean": clean(self.mean),
            "per_image": {stem: clean(values) for stem, values in self.per_image.items()},
            "gt_without_prediction": list(self.gt_without_prediction),
        }


def evaluate_folders(
    pred_dir: str | Path,
    gt_dir: str | Path,
    trimap_dir: str | Path | None = None,
    *,
    fast: bool = False,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score every PNG prediction in `pred_dir` against its GT mask (and trimap, when there is one).

    Every prediction must have a GT mask: an extra prediction is an error, not skipped. GT masks
    without a prediction are allowed and listed in the report. `fast` skips GRAD and CONN;
    `progress` is called with each stem before it is scored.
    """
    pred_dir = _existing_dir(pred_dir, "prediction")
    mask_dir, trimap_dir = _resolve_gt(_existing_dir(gt_dir, "ground-truth"), trimap_dir)
    pairs = _match(_predictions(pred_dir), mask_dir)

    per_image: dict[str, dict[str, float]] = {}
    for stem, pred_path, gt_path in pairs:
        if progress is not None:
            progress(stem)
        pred = _read_gray(pred_path)
        alpha = _read_gray(gt_path)
        _same_size(pred_path, pred, gt_path, alpha)
        trimap = None
        if trimap_dir is not None:
            trimap_path = _find_gt(trimap_dir, stem)
            if trimap_path is None:
                raise P3MError(
                    f"no trimap for '{gt_path.name}' in {trimap_dir}",
                    "every GT mask needs a trimap of the same name; pass the right trimap folder or none",
                )
            trimap = _read_gray(trimap_path)
            _same_size(pred_path, pred, trimap_path, trimap)
        per_image[stem] = compute_all(
            pred.astype(np.float32) / 255.0, alpha.astype(np.float32) / 255.0, trimap, fast=fast
        )

    keys = next(iter(per_image.values())).keys()
    mean = {key: sum(values[key] for values in per_image.values()) / len(per_image) for key in keys}
    scored = set(per_image)
    missing = tuple(sorted(s for s in _stems(mask_dir) if s not in scored))
    files = {stem: (pred_path, gt_path) for stem, pred_path, gt_path in pairs}
    return EvalReport(per_image, mean, pred_dir, mask_dir, trimap_dir, missing, files)


def format_table(report: EvalReport, *, per_image: bool = False) -> str:
    """A plain-text table of the means (and, with `per_image`, one row per image)."""
    keys = list(report.mean)
    name_width = max([5] + ([len(s) for s in report.per_image] if per_image else []))
    width = {k: max(len(k), 10) for k in keys}

    def row(name: str, values: dict[str, float]) -> str:
        cells = (format(values[k], _FORMATS.get(k, ".4f")).rjust(width[k]) for k in keys)
        return "  ".join([name.ljust(name_width), *cells])

    header = "  ".join(["image".ljust(name_width), *(k.rjust(width[k]) for k in keys)])
    lines = [
        f"predictions: {report.pred_dir}",
        f"ground truth: {report.mask_dir}" + (f"  trimaps: {report.trimap_dir}" if report.trimap_dir else ""),
        f"images: {report.count}",
    ]
    if report.gt_without_prediction:
        lines.append(f"not scored (GT without prediction): {len(report.gt_without_prediction)}")
    lines += ["", header, "-" * len(header)]
    if per_image:
        lines += [row(stem, values) for stem, values in report.per_image.items()]
        lines.append("-" * len(header))
    lines.append(row("mean", report.mean))
    return "\n".join(lines)


def write_json(report: EvalReport, path: str | Path) -> None:
    """Write `report.to_dict()` as indented JSON."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _existing_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise P3MError(f"{what} folder not found: {path}", "check the path")
    return path


def _resolve_gt(gt_dir: Path, trimap_dir: str | Path | None) -> tuple[Path, Path | None]:
    """(mask folder, trimap folder or None): a P3M-500 root gives its `mask/` and `trimap/`."""
    if trimap_dir is not None:
        trimap_dir = _existing_dir(trimap_dir, "trimap")
    if (gt_dir / "mask").is_dir():
        if trimap_dir is None and (gt_dir / "trimap").is_dir():
            trimap_dir = gt_dir / "trimap"
        return gt_dir / "mask", trimap_dir
    return gt_dir, trimap_dir


def _predictions(pred_dir: Path) -> list[Path]:
    """The prediction PNGs; in a `p3m image` folder (any `*_alpha.png`) only those, not `*_rgba.png`."""
    pngs = sorted(p for p in pred_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    ours = [p for p in pngs if p.stem.endswith(PRED_SUFFIXES)]
    if ours:
        pngs = ours
    if not pngs:
        raise P3MError(f"no PNG predictions in {pred_dir}", "point it at the folder of predicted mattes")
    return pngs


def _match(predictions: list[Path], mask_dir: Path) -> list[tuple[str, Path, Path]]:
    """(GT stem, prediction, GT mask) for each prediction; the exact stem wins over a stripped suffix."""
    pairs: dict[str, tuple[str, Path, Path]] = {}
    for pred_path in predictions:
        name = pred_path.stem
        candidates = [name] + [name[: -len(s)] for s in PRED_SUFFIXES if name.endswith(s) and name != s]
        found = [(stem, gt) for stem in candidates if (gt := _find_gt(mask_dir, stem)) is not None]
        if not found:
            raise P3MError(
                f"no ground truth for prediction '{pred_path.name}' in {mask_dir} "
                "(every prediction must have one: extra predictions are not skipped)",
                f"expected {candidates[-1]}.png or .jpg there; remove the prediction or fix the GT folder",
            )
        stem, gt_path = found[0]
        if stem in pairs:
            raise P3MError(
                f"two predictions for '{gt_path.name}': '{pairs[stem][1].name}' and '{pred_path.name}'",
                "keep one prediction per image in the folder",
            )
        pairs[stem] = (stem, pred_path, gt_path)
    return [pairs[stem] for stem in sorted(pairs)]


def _find_gt(folder: Path, stem: str) -> Path | None:
    for ext in GT_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _stems(folder: Path) -> set[str]:
    return {
        p.stem for p in folder.iterdir()
        if p.suffix.lower() in GT_EXTENSIONS and not p.name.startswith(".")
    }


def _read_gray(path: Path) -> np.ndarray:
    """8-bit grayscale as cv2.imread(path, 0) gives it (the official reader)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise P3MError(f"cannot read image {path}", "is it a valid PNG/JPEG file?")
    return image


def _same_size(a_path: Path, a: np.ndarray, b_path: Path, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise P3MError(
            f"size mismatch: {a_path.name} is {a.shape[1]}x{a.shape[0]} (WxH) "
            f"but {b_path.name} is {b.shape[1]}x{b.shape[0]}",
            "predictions must be saved at the ground truth's size (W x H)",
        )
