"""The compositor's every frame on the CPU in one compiled pass: the picture over its background, and the edge
band's colours estimated.

model/foreground.py's `estimate_band` + `EdgeBand.composite` do the band in numpy: gather the band's pixels,
sample the small F and B there, fit, mix, through a dozen full-band temporaries, after a blend of the whole
frame; here each pixel is read once and written once (fitted where it is partial), with the GIL released so the
pipeline's other threads run meanwhile (the costs: bench/RESULTS.md). The solve at the reduced size is still
pymatting's (`solve_small`).
"""
from __future__ import annotations

import functools
import logging
import threading

import numpy as np

from model.foreground import WORK_SIZE, pymatting_ml, solve_small

log = logging.getLogger(__name__)


def composite(image: np.ndarray, alpha: np.ndarray, alpha8: np.ndarray, out: np.ndarray,
              background: np.ndarray | None = None, work_size: int = WORK_SIZE) -> None:
    """Fill `out` in one pass: with a `background` (H×W×3 uint8), `image` over it, α·F + (1 − α)·background in
    the edge band (0 < `alpha8` < 255); without one, `out` is RGBA: F in the band, `image` elsewhere, and
    `alpha8` as its alpha. `image`: H×W×3 uint8 RGB; `alpha`: H×W float32 in [0, 1], `alpha8` its 8-bit
    rounding; `out`: H×W×3 (or ×4 without a background) uint8. F and B are solved only when a pixel is partial."""
    if ((alpha8 > 0) & (alpha8 < 255)).any():
        fg, bg = solve_small(image, alpha, work_size)
    else:
        fg = bg = _NOTHING_SOLVED
    transparent = background is None
    _kernel()(image, np.ascontiguousarray(alpha, dtype=np.float32), alpha8, fg, bg,
              image if transparent else background, out, transparent)


_NOTHING_SOLVED = np.zeros((1, 1, 3), np.float32)     # F and B of a frame without an edge band: never read
_warm_ups: list[threading.Thread] = []


def warming_up() -> bool:
    """True while a warm-up still imports: the interpreter must not be finalised beside it (numba's import
    crashes then; stream/cli/__init__.py exits without finalising)."""
    return any(thread.is_alive() for thread in _warm_ups)


def warm_up() -> threading.Thread:
    """Import pymatting and load the compiled pass on a daemon thread, started while the job loads its model:
    seconds of imports (numba, pymatting's modules) that the first frame would otherwise wait for."""
    def load() -> None:
        try:
            pymatting_ml()
            picture = np.zeros((2, 2, 3), np.uint8)
            for out in (picture.copy(), np.zeros((2, 2, 4), np.uint8)):      # loads both from numba's cache
                _kernel()(picture, np.zeros((2, 2), np.float32), np.ones((2, 2), np.uint8), _NOTHING_SOLVED,
                          _NOTHING_SOLVED, picture, out, out.shape[2] == 4)
        except Exception as e:  # noqa: BLE001 - the first frame's own call raises it where it is reported
            log.debug("foreground estimation's warm-up failed: %s", e)

    thread = threading.Thread(target=load, name="p3m-foreground-warm-up", daemon=True)
    _warm_ups[:] = [t for t in _warm_ups if t.is_alive()] + [thread]
    thread.start()
    return thread


@functools.cache
def _kernel():
    """The compiled pass; numba compiles it on first use (cached on disk after that)."""
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def paint(image, alpha, alpha8, small_fg, small_bg, background, out, transparent):  # pragma: no cover
        # float32 throughout (a Python float literal would make each step float64): 15 % faster
        zero, one, half, full = np.float32(0.0), np.float32(1.0), np.float32(0.5), np.float32(255.0)
        height, width = alpha.shape
        small_h, small_w = small_fg.shape[:2]
        scale_y, scale_x = np.float32(small_h / height), np.float32(small_w / width)
        for row in range(height):
            # pixel centres aligned as cv2.resize aligns them, edges replicated (model/foreground.py _sample)
            y = min(max((row + half) * scale_y - half, zero), np.float32(small_h - 1))
            y0 = int(y)
            y1 = min(y0 + 1, small_h - 1)
            wy = np.float32(y - y0)
            for col in range(width):
                a8 = alpha8[row, col]
                if transparent:
                    out[row, col, 3] = a8
                if a8 == 0 or a8 == 255:
                    source = image if a8 == 255 or transparent else background
                    for c in range(3):
                        out[row, col, c] = source[row, col, c]
                    continue
                x = min(max((col + half) * scale_x - half, zero), np.float32(small_w - 1))
                x0 = int(x)
                x1 = min(x0 + 1, small_w - 1)
                wx = np.float32(x - x0)
                w00, w01, w10, w11 = (one - wx) * (one - wy), wx * (one - wy), (one - wx) * wy, wx * wy
                a = alpha[row, col]
                b_share = one - a
                inverse_weight = one / (a * a + b_share * b_share)
                for c in range(3):
                    f = (small_fg[y0, x0, c] * w00 + small_fg[y0, x1, c] * w01 + small_fg[y1, x0, c] * w10
                         + small_fg[y1, x1, c] * w11)
                    b = (small_bg[y0, x0, c] * w00 + small_bg[y0, x1, c] * w01 + small_bg[y1, x0, c] * w10
                         + small_bg[y1, x1, c] * w11)
                    # the smallest change to (f, b) that reproduces the pixel (model/foreground.py fit_to_pixels)
                    step = (image[row, col, c] / full - a * f - b_share * b) * inverse_weight
                    f = min(max(f + a * step, zero), one)
                    value = f if transparent else a * f + b_share * (background[row, col, c] / full)
                    out[row, col, c] = np.uint8(min(max(value * full + half, zero), full))

    return paint
