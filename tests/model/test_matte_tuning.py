"""Matte tuning on a generated frame: a hard disc with a soft ramp around it and a speck beside it."""
from __future__ import annotations

import numpy as np
import pytest

from model.matte_tuning import MatteTuning, suppress_spill, threshold

H = W = 64


def disc_alpha() -> np.ndarray:
    """1 within radius 16 of the centre, falling linearly to 0 at radius 24; a 2×2 speck at (4, 4)."""
    y, x = np.mgrid[:H, :W]
    r = np.hypot(y - 32, x - 32)
    alpha = np.clip((24 - r) / 8, 0, 1).astype(np.float32)
    alpha[4:6, 4:6] = 1.0
    return alpha


def block_alpha() -> np.ndarray:
    """A hard-edged 32×32 block in the middle (straight edges: sizes exact) and a 2×2 speck at (4, 4)."""
    alpha = np.zeros((H, W), np.float32)
    alpha[16:48, 16:48] = 1.0
    alpha[4:6, 4:6] = 1.0
    return alpha


def radius_of(alpha: np.ndarray, level: float = 0.5) -> int:
    """How far right of the centre the alpha stays at or above `level` along the middle row."""
    row = alpha[32, 32:]
    return int(np.argmax(row < level))


def test_defaults_change_nothing():
    alpha = disc_alpha()
    assert not MatteTuning().active
    assert MatteTuning().apply(alpha) is alpha


def test_threshold_zeroes_below_and_stays_soft_above():
    alpha = disc_alpha()
    tuned = threshold(alpha, 0.5)
    assert np.all(tuned[alpha < 0.5] == 0) and np.all(tuned[alpha == 1] == 1)
    soft = (alpha > 0.5) & (alpha < 1)
    np.testing.assert_allclose(tuned[soft], (alpha[soft] - 0.5) / 0.5, atol=1e-6)   # no step: a ramp again
    assert tuned.dtype == np.float32


def test_erode_shrinks_dilate_grows_and_both_remove_a_speck():
    alpha = block_alpha()
    assert radius_of(MatteTuning(erode=3).apply(alpha)) == radius_of(alpha) - 3
    assert radius_of(MatteTuning(dilate=3).apply(alpha)) == radius_of(alpha) + 3
    opened = MatteTuning(erode=2, dilate=2).apply(alpha)
    assert opened[4:6, 4:6].max() == 0                         # the speck is gone
    assert radius_of(opened) == radius_of(alpha)               # the disc keeps its size


def test_feather_softens_a_hard_edge_over_about_its_width():
    hard = block_alpha()
    soft = MatteTuning(feather=4).apply(hard)
    row = soft[32, 32:]
    ramp = np.flatnonzero((row > 0.02) & (row < 0.98))
    assert 4 <= ramp.size <= 10                                 # was 0: a step
    assert radius_of(soft) == radius_of(hard)                   # the edge stays where it was
    assert soft[32, 32] == pytest.approx(1.0) and soft[H - 1, W - 1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("spill", "cast", "keyed"), [("green", (120, 200, 100), 1), ("blue", (120, 100, 200), 2)])
def test_spill_takes_the_screen_cast_off_and_leaves_other_colours(spill, cast, keyed):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = cast                    # skin lit by the screen
    rgb[0, 1] = (200, 150, 120)         # skin
    rgb[1, 0] = (40, 40, 40)            # grey
    rgb[1, 1] = (90, 60, 200)           # a colour with the other screen's cast: left alone
    out = suppress_spill(rgb, spill)
    assert out[0, 0, keyed] == 120 and tuple(np.delete(out[0, 0], keyed)) == tuple(np.delete(rgb[0, 0], keyed))
    np.testing.assert_array_equal(out[0, 1], rgb[0, 1])
    np.testing.assert_array_equal(out[1, 0], rgb[1, 0])
    if spill == "green":
        np.testing.assert_array_equal(out[1, 1], rgb[1, 1])
    assert suppress_spill(rgb, "off") is rgb
