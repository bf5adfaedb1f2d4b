"""Flicker, dtSSD and MESSDdt on generated clips with known answers; `p3m eval` of a matte video and its sheet."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from model.cli import eval_command
from model.errors import P3MError
from model.evaluation.temporal import dtssd, flicker, messddt, still_pixels
from model.evaluation.videos import evaluate_video


def _clip(frames: int = 6, size: tuple[int, int] = (48, 64)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A still picture whose right half is replaced by fresh noise every frame, and a matte that blinks by 0.2
    everywhere on odd frames: known flicker 0.2 where the picture stands still (the left half, away from the
    noise), none measured where it moves."""
    rng = np.random.default_rng(0)
    h, w = size
    still = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    images, alphas = [], []
    for t in range(frames):
        image = still.copy()
        image[:, w // 2:] = rng.integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)
        images.append(image)
        alphas.append(np.full((h, w), 0.5 + 0.2 * (t % 2), np.float32))
    return alphas, images


def test_flicker_is_the_alpha_change_where_the_picture_stands_still():
    alphas, images = _clip()
    mask = still_pixels(images[1], images[0])
    assert mask[:, :28].all() and not mask[:, 34:].any()      # the noise's 5×5 window reaches 2 px left
    assert flicker(alphas, images) == pytest.approx(0.2, abs=1e-6)
    steady = [alphas[0]] * len(alphas)
    assert flicker(steady, images) == 0.0
    moving_only = [np.where(np.arange(64) >= 40, a, 0.5).astype(np.float32) for a in alphas]
    assert flicker(moving_only, images) == 0.0               # changes where the picture moves are not flicker


def test_dtssd_and_messddt_are_zero_for_a_matte_that_follows_the_truth_and_not_for_one_that_blinks():
    true = [np.zeros((40, 40), np.float32) for _ in range(2)]
    for t, a in enumerate(true):
        a[10:30, 10 + 2 * t:20 + 2 * t] = 0.8                  # a square moving right
    assert dtssd(true[1], true[0], true[1], true[0]) == 0.0
    offset = [a + 0.1 for a in true]                           # a steady error: no temporal error
    assert dtssd(offset[1], offset[0], true[1], true[0]) == pytest.approx(0.0, abs=1e-6)
    blink = [true[0], np.clip(true[1] + 0.3, 0, 1)]
    assert dtssd(blink[1], blink[0], true[1], true[0]) > 0.2
    assert messddt(blink[1], blink[0], true[1], true[0]) > 10 * messddt(true[1], true[0], true[1], true[0])


def _write(path, frames, gray: bool) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "gray" if gray else "bgr0"
        for frame in frames:
            image = frame if not gray else (frame * 255 + 0.5).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="gray" if gray else "rgb24")))
        container.mux(stream.encode())


def test_eval_scores_a_matte_video_against_its_input_and_a_ground_truth(tmp_path):
    alphas, images = _clip()
    _write(tmp_path / "in.mkv", images, gray=False)
    _write(tmp_path / "matte.mkv", alphas, gray=True)
    _write(tmp_path / "truth.mkv", [alphas[0]] * len(alphas), gray=True)
    report = evaluate_video(tmp_path / "matte.mkv", tmp_path / "in.mkv", tmp_path / "truth.mkv")
    assert report.frames == 6
    assert report.metrics["FLICKER"] == pytest.approx(0.2, abs=0.005)            # 8-bit mattes
    assert report.metrics["MAD"] == pytest.approx(0.1, abs=0.005)                # 0.2 on half the frames
    assert report.metrics["dtSSD"] == pytest.approx(0.2, abs=0.005)
    result = CliRunner().invoke(eval_command, ["--pred", str(tmp_path / "matte.mkv"), "--video",
                                               str(tmp_path / "in.mkv")])
    assert result.exit_code == 0 and "FLICKER" in result.output
    _write(tmp_path / "short.mkv", alphas[:4], gray=True)
    with pytest.raises(P3MError, match="differ in length"):
        evaluate_video(tmp_path / "short.mkv", tmp_path / "in.mkv")


def test_eval_draws_a_contact_sheet_worst_first(tmp_path):
    for folder in ("images", "gt", "pred"):
        (tmp_path / folder).mkdir()
    truth = np.zeros((60, 80), np.uint8)
    truth[10:50, 20:60] = 255
    for stem, wrong in (("good", 0), ("bad", 30)):
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), np.full((60, 80, 3), 128, np.uint8))
        cv2.imwrite(str(tmp_path / "gt" / f"{stem}.png"), truth)
        pred = truth.copy()
        pred[:, :wrong] = 255
        cv2.imwrite(str(tmp_path / "pred" / f"{stem}.png"), pred)
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(eval_command, ["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                                               "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    drawn = cv2.imread(str(sheet))
    assert drawn.shape[0] == 2 * (240 + 22) and drawn.shape[1] == 4 * 320
    error_tiles = drawn[:, 3 * 320:]
    assert error_tiles[22:262].mean() > error_tiles[262 + 22:].mean()     # the bad one, drawn first


def test_a_phone_clip_is_scored_upright_as_the_cutout_wrote_its_matte(tmp_path):
    """A clip with a display rotation (a phone's): p3m decodes it upright and writes the matte upright, so
    `p3m eval --video` must read it upright too, not refuse a size mismatch."""
    alphas, images = _clip()                      # 48×64 frames, coded as such
    with av.open(str(tmp_path / "phone.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(-90)         # shown turned a quarter: upright 64 high, 48 wide
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    upright = [np.ascontiguousarray(np.rot90(a, -1)) for a in alphas]       # as the cut-out turns the frames
    _write(tmp_path / "matte.mkv", upright, gray=True)
    report = evaluate_video(tmp_path / "matte.mkv", tmp_path / "phone.mp4")
    assert report.frames == 6 and report.metrics["FLICKER"] > 0.1
