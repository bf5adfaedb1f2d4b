"""Folder evaluation: matching predictions to ground truth, both layouts, the report, the errors."""
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.errors import P3MError
from model.evaluation.evaluate import EvalReport, evaluate_folders, format_table, write_json

# Image "a": |pred − gt| / 255 = [[0, 0, 1], [.2, 0, 0]] → SAD 1.2e-3, MSE 1.04/6, MAD 1.2/6.
GT_A = np.array([[0, 255, 255], [0, 255, 0]], np.uint8)
PRED_A = np.array([[0, 255, 0], [51, 255, 0]], np.uint8)
# Trimap "a": forcing makes p' = gt exactly (SAD-T 0); fg (0,2) errs by 1, bg (1,0) by .2.
TRIMAP_A = np.array([[0, 128, 255], [0, 128, 128]], np.uint8)
# Image "b": a perfect prediction.
GT_B = np.full((2, 2), 255, np.uint8)
PRED_B = GT_B.copy()
TRIMAP_B = np.array([[255, 128], [255, 255]], np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def plain(tmp_path: Path) -> tuple[Path, Path, Path]:
    """`p3m image` output (mattes + cut-outs) beside plain GT and trimap folders."""
    pred, gt, tri = tmp_path / "pred", tmp_path / "gt", tmp_path / "trimaps"
    _write(pred / "a_alpha.png", PRED_A)
    _write(pred / "b_alpha.png", PRED_B)
    _write(pred / "a_rgba.png", np.zeros((2, 3, 4), np.uint8))  # the cut-out `p3m image` writes: ignored
    _write(gt / "a.png", GT_A)
    _write(gt / "b.png", GT_B)
    _write(tri / "a.png", TRIMAP_A)
    _write(tri / "b.png", TRIMAP_B)
    return pred, gt, tri


def test_plain_folders_without_trimaps(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, _ = plain
    report = evaluate_folders(pred, gt)
    assert report.count == 2 and list(report.per_image) == ["a", "b"]
    a, b = report.per_image["a"], report.per_image["b"]
    assert list(a) == ["SAD", "MSE", "MAD", "GRAD", "CONN"]
    assert a["SAD"] == pytest.approx(1.2e-3, rel=1e-6)
    assert a["MSE"] == pytest.approx(1.04 / 6, rel=1e-6)
    assert a["MAD"] == pytest.approx(0.2, rel=1e-6)
    assert a["GRAD"] > 0 and a["CONN"] > 0
    assert all(value == 0 for value in b.values())
    assert report.mean["SAD"] == pytest.approx(0.6e-3, rel=1e-6)
    assert report.mean["MSE"] == pytest.approx(1.04 / 12, rel=1e-6)
    assert report.mean["GRAD"] == pytest.approx(a["GRAD"] / 2)
    assert report.trimap_dir is None and report.gt_without_prediction == ()


def test_plain_folders_with_trimaps(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, tri = plain
    report = evaluate_folders(pred, gt, tri, fast=True)
    a = report.per_image["a"]
    assert list(a) == ["SAD", "MSE", "MAD", "SAD_TRIMAP", "MSE_TRIMAP", "MAD_TRIMAP", "SAD_FG", "SAD_BG"]
    assert a["SAD_TRIMAP"] == 0 and a["MSE_TRIMAP"] == 0
    assert a["SAD_FG"] == pytest.approx(1e-3, rel=1e-6)
    assert a["SAD_BG"] == pytest.approx(0.2e-3, rel=1e-6)
    assert report.mean["SAD_FG"] == pytest.approx(0.5e-3, rel=1e-6)
    assert report.mean["SAD_BG"] == pytest.approx(0.1e-3, rel=1e-6)


def test_p3m500_layout_uses_mask_and_trimap(tmp_path: Path) -> None:
    root, pred = tmp_path / "P3M-500-P", tmp_path / "pred"
    _write(root / "blurred_image" / "a.jpg", np.zeros((2, 3, 3), np.uint8))
    _write(root / "mask" / "a.png", GT_A)
    _write(root / "trimap" / "a.png", TRIMAP_A)
    _write(pred / "a.png", PRED_A)  # the official test scripts' naming
    report = evaluate_folders(pred, root)
    assert report.mask_dir == root / "mask" and report.trimap_dir == root / "trimap"
    assert report.per_image["a"]["SAD"] == pytest.approx(1.2e-3, rel=1e-6)
    assert report.per_image["a"]["SAD_BG"] == pytest.approx(0.2e-3, rel=1e-6)


def test_gt_without_prediction_is_listed(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, _ = plain
    (pred / "b_alpha.png").unlink()
    _write(gt / "c.jpg", GT_B)
    report = evaluate_folders(pred, gt, fast=True)
    assert list(report.per_image) == ["a"]
    assert report.gt_without_prediction == ("b", "c")
    assert "not scored" in format_table(report)


def test_jpg_ground_truth(tmp_path: Path) -> None:
    _write(tmp_path / "gt" / "b.jpg", GT_B)  # a flat white JPEG decodes to 255 exactly
    _write(tmp_path / "pred" / "b.png", np.zeros((2, 2), np.uint8))
    report = evaluate_folders(tmp_path / "pred", tmp_path / "gt", fast=True)
    assert report.per_image["b"]["MAD"] == 1


def test_format_table_and_json(plain: tuple[Path, Path, Path], tmp_path: Path) -> None:
    pred, gt, tri = plain
    report = evaluate_folders(pred, gt, tri)
    table = format_table(report, per_image=True)
    for text in ("SAD_TRIMAP", "CONN", "images: 2", "0.0006", "0.086667"):
        assert text in table
    lines = table.splitlines()
    assert lines[-1].startswith("mean") and any(line.startswith("a ") for line in lines)
    assert not any(line.startswith("a ") for line in format_table(report).splitlines())  # means only

    out = tmp_path / "report.json"
    write_json(report, out)
    data = json.loads(out.read_text())
    assert data["count"] == 2 and data["mean"]["SAD"] == pytest.approx(0.6e-3, rel=1e-6)
    assert data["per_image"]["a"]["SAD_FG"] == pytest.approx(1e-3, rel=1e-6)


def test_json_writes_undefined_values_as_null(tmp_path: Path) -> None:
    report = EvalReport({"x": {"MSE_TRIMAP": math.nan}}, {"MSE_TRIMAP": math.nan}, tmp_path, tmp_path, tmp_path)
    write_json(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["mean"] == {"MSE_TRIMAP": None}


def test_real_mattes_match_the_documented_difference(shared: Path) -> None:
    """SPEC §11: the MM and IJCV mattes of p_015cd10e differ by mean |Δ| 0.76/255."""
    portraits = shared / "media" / "portraits"
    report = evaluate_folders(portraits / "p3m_vitae_s_alpha", portraits / "p3m_r34_alpha", fast=True)
    assert report.count == 14
    assert report.per_image["p_015cd10e"]["MAD"] * 255 == pytest.approx(0.76, abs=0.005)


# --- errors a user can cause -------------------------------------------------------------------


def _one_line_error(call) -> P3MError:
    with pytest.raises(P3MError) as error:
        call()
    assert "\n" not in str(error.value) and error.value.hint
    return error.value


def test_missing_folder(tmp_path: Path) -> None:
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "nope", tmp_path))
    assert "prediction folder not found" in error.message and "nope" in error.message
    (tmp_path / "pred").mkdir()
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "pred", tmp_path / "gone"))
    assert "ground-truth folder not found" in error.message
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "pred", tmp_path, tmp_path / "t"))
    assert "trimap folder not found" in error.message


def test_no_png_predictions(tmp_path: Path) -> None:
    _write(tmp_path / "pred" / "a.jpg", PRED_A)
    _write(tmp_path / "gt" / "a.png", GT_A)
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "pred", tmp_path / "gt"))
    assert "no PNG predictions" in error.message


def test_prediction_without_ground_truth_is_an_error(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, _ = plain
    _write(pred / "zz_alpha.png", PRED_B)
    error = _one_line_error(lambda: evaluate_folders(pred, gt))
    assert "zz_alpha.png" in error.message and "not skipped" in error.message
    assert "zz.png" in error.hint


def test_size_mismatch_names_file_and_sizes(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, tri = plain
    _write(pred / "b_alpha.png", np.zeros((2, 4), np.uint8))
    error = _one_line_error(lambda: evaluate_folders(pred, gt))
    assert "b_alpha.png" in error.message and "4x2" in error.message and "2x2" in error.message
    _write(pred / "b_alpha.png", PRED_B)
    _write(tri / "a.png", np.zeros((3, 3), np.uint8))
    error = _one_line_error(lambda: evaluate_folders(pred, gt, tri))
    assert "a.png" in error.message and "3x2" in error.message and "3x3" in error.message


def test_missing_trimap(plain: tuple[Path, Path, Path]) -> None:
    pred, gt, tri = plain
    (tri / "b.png").unlink()
    error = _one_line_error(lambda: evaluate_folders(pred, gt, tri))
    assert "no trimap" in error.message and "b.png" in error.message


def test_two_predictions_for_one_image(tmp_path: Path) -> None:
    _write(tmp_path / "gt" / "x_alpha.png", GT_B)
    _write(tmp_path / "pred" / "x_alpha.png", PRED_B)
    _write(tmp_path / "pred" / "x_alpha_alpha.png", PRED_B)
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "pred", tmp_path / "gt"))
    assert "two predictions" in error.message


def test_unreadable_prediction(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "a.png").write_bytes(b"not a png")
    _write(tmp_path / "gt" / "a.png", GT_A)
    error = _one_line_error(lambda: evaluate_folders(tmp_path / "pred", tmp_path / "gt"))
    assert "cannot read" in error.message and "a.png" in error.message
