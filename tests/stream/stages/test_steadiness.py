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


def test_an_alpha_that_blinks_on_a_still_picture_is_held():
    image, alpha = _edge_frame(100)
    hold, raw, out = StillHold(strength=0.9), [], []
    for t in range(40):
        blinking = alpha.copy()
        blinking[:, 160:180] = 0.8 * (t % 2)                                # a false positive, on and off
        raw.append(blinking)
        out.append(hold.hold(blinking, image))
    change = [np.abs(np.diff(np.array(a[10:]), axis=0)).mean() for a in (raw, out)]
    assert change[1] < 0.2 * change[0]
    steady = hold.hold(alpha.copy(), image)
    for _ in range(40):                                                     # the blob goes for good: it fades
        steady = hold.hold(alpha.copy(), image)
    assert np.abs(steady - alpha).max() < 0.02
