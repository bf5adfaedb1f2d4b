"""StillHold: the alpha holds where the picture stands still, and a moving edge (its pixels change) does not
trail by more than a frame."""
from __future__ import annotations

import numpy as np

from stream.stages.steadiness import StillHold


def _edge_frame(position: float, width: int = 200, rows: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A person (bright) left of `position` on a dark wall, 8 px ramp: the image and its alpha."""
    x = np.arange(width, dtype=np.float32)
    alpha = np.repeat(np.clip((position - x) / 8 + 0.5, 0, 1)[None], rows, 0).astype(np.float32)
    image = np.repeat((40 + 180 * alpha)[..., None], 3, 2).round().astype(np.uint8)
    return image, alpha


def test_a_moving_edge_whose_pixels_move_lags_at_most_a_frame():
    hold, worst = StillHold(), 0.0
    for t in range(30):
        image, alpha = _edge_frame(40 + 2 * t)
        out = hold.hold(alpha.copy(), image)
        worst = max(worst, (alpha.sum(1) - out.sum(1)).mean() / 2)     # edge position = the row's alpha sum
    assert worst <= 1.0


def test_an_alpha_that_shimmers_on_a_still_picture_is_held():
    image, alpha = _edge_frame(100)
    hold, raw, out = StillHold(strength=0.9), [], []
    for t in range(40):
        shimmering = alpha.copy()
        shimmering[:, 90:110] += 0.06 * (t % 2) - 0.03                      # the edge, up and down each frame
        raw.append(shimmering)
        out.append(hold.hold(shimmering, image))
    change = [np.abs(np.diff(np.array(a[10:]), axis=0)).mean() for a in (raw, out)]
    assert change[1] < 0.2 * change[0]
    steady = hold.hold(alpha.copy(), image)
    for _ in range(40):                                                     # the shimmer ends: the edge settles
        steady = hold.hold(alpha.copy(), image)
    assert np.abs(steady - alpha).max() < 0.02


def test_a_change_the_pixels_do_not_show_goes_through_when_it_is_large():
    # A flat surface sliding, or a block the encoder copied: the picture looks still while the alpha moves.
    image, alpha = _edge_frame(100)
    hold = StillHold(strength=0.9, release=0.1)
    hold.hold(alpha.copy(), image)
    moved = alpha.copy()
    moved[:, 150:170] = 0.8                                                 # a region the model now sees
    out = hold.hold(moved, image)
    np.testing.assert_array_equal(out[:, 150:170], moved[:, 150:170])      # no ghost of the old alpha left
    assert np.abs(out - moved).max() < 0.1                                  # anywhere


def _still_scene_with_noise(frames: int = 12) -> list[np.ndarray]:
    """A red disc with a soft edge on grey, 320×180, and new ±1 sensor noise each frame: the picture stands still."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:180, :320]
    disc = np.clip((60 - np.hypot(yy - 90, xx - 160)) / 4 + 0.5, 0, 1)[..., None]
    clean = disc * (220, 40, 40) + (1 - disc) * (110, 110, 110)
    return [np.clip(clean + rng.integers(-1, 2, clean.shape), 0, 255).astype(np.uint8) for _ in range(frames)]


def _upsampled_change(steadiness: StillHold | None) -> float:
    """Mean |α_t − α_{t−1}| at full size through the cut-out's CPU plan (model to upsampling, and the hold)."""
    from helpers.doubles import RedKeyMatter

    from stream.frames import Frame
    from stream.jobs.assembly import plan_stages
    from stream.stages.compositing import Compositor
    from stream.stages.matting import MattingStage
    from stream.stages.smoothing import TemporalSmoother

    stages = plan_stages(MattingStage(RedKeyMatter(), infer_size=64), TemporalSmoother(), Compositor(),
                         steadiness=steadiness)[:-1]
    alphas = []
    for i, image in enumerate(_still_scene_with_noise()):
        frame = Frame(i, image)
        for stage in stages:
            frame = stage.process(frame)
        alphas.append(frame.alpha)
    return float(np.abs(np.diff(np.array(alphas[2:]), axis=0)).mean())


def test_the_upsampled_edges_shimmer_on_a_still_picture_is_held():
    # The model sees the same disc every frame; the guided upsampling follows each frame's noise at the edge.
    held, shimmering = _upsampled_change(StillHold()), _upsampled_change(None)
    assert shimmering > 0
    assert held < 0.3 * shimmering, (held, shimmering)


def test_frames_of_one_pixel_are_held_too():
    hold, image = StillHold(strength=0.5), np.full((1, 1, 3), 90, np.uint8)
    hold.hold(np.full((1, 1), 0.5, np.float32), image)
    assert abs(hold.hold(np.full((1, 1), 0.46, np.float32), image)[0, 0] - 0.48) < 1e-6
