"""The edge band's colours in one compiled pass, for the compositor's every frame on the CPU.

model/foreground.py's `estimate_band` + `EdgeBand.composite` do the same in numpy: gather the band's pixels,
sample the small F and B there, fit, mix, through a dozen full-band temporaries; here each band pixel is read
once, fitted and written in place, with the GIL released so the pipeline's other threads run meanwhile (the
costs: bench/RESULTS.md). The solve at the reduced size is still pymatting's (`solve_small`).
"""
from __future__ import annotations

import functools
import logging
import threading

import numpy as np

from model.foreground import WORK_SIZE, pymatting_ml, solve_small

log = logging.getLogger(__name__)


def paint_band(image: np.ndarray, alpha: np.ndarray, alpha8: np.ndarray, out: np.ndarray,
               background: np.ndarray | None = None, work_size: int = WORK_SIZE) -> bool:
    """Overwrite the edge band (0 < `alpha8` < 255) of `out` in place: with α·F + (1 − α)·`background` when a
    background (H×W×3 uint8) is given, else with F itself (the colour channels of an RGBA `out`). `image`:
    H×W×3 uint8 RGB; `alpha`: H×W float32 in [0, 1]; `out`: H×W×3 or ×4 uint8. False when no pixel is partial
    (nothing solved, nothing written)."""
    if not ((alpha8 > 0) & (alpha8 < 255)).any():
        return False
    fg, bg = solve_small(image, alpha, work_size)
    no_background = background is None
    _kernel()(image, np.ascontiguousarray(alpha, dtype=np.float32), alpha8, fg, bg,
              out if no_background else background, out, no_background)
    return True


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
            small = np.zeros((2, 2, 3), np.float32)
            paint = np.zeros((2, 2, 3), np.uint8)
            _kernel()(paint, np.zeros((2, 2), np.float32), np.ones((2, 2), np.uint8), small, small, paint,
                      paint.copy(), False)     # loads the compiled code from numba's cache
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
    def paint(image, alpha, alpha8, small_fg, small_bg, background, out, no_background):  # pragma: no cover
        height, width = alpha.shape
        small_h, small_w = small_fg.shape[:2]
        scale_y, scale_x = small_h / height, small_w / width
        for row in range(height):
            # pixel centres aligned as cv2.resize aligns them, edges replicated (model/foreground.py _sample)
            y = min(max((row + 0.5) * scale_y - 0.5, 0.0), small_h - 1.0)
            y0 = int(y)
            y1 = min(y0 + 1, small_h - 1)
            wy = y - y0
            for col in range(width):
                a8 = alpha8[row, col]
                if a8 == 0 or a8 == 255:
                    continue
                x = min(max((col + 0.5) * scale_x - 0.5, 0.0), small_w - 1.0)
                x0 = int(x)
                x1 = min(x0 + 1, small_w - 1)
                wx = x - x0
                a = alpha[row, col]
                weight = a * a + (1 - a) * (1 - a)
                for c in range(3):
                    f = ((small_fg[y0, x0, c] * (1 - wx) + small_fg[y0, x1, c] * wx) * (1 - wy)
                         + (small_fg[y1, x0, c] * (1 - wx) + small_fg[y1, x1, c] * wx) * wy)
                    b = ((small_bg[y0, x0, c] * (1 - wx) + small_bg[y0, x1, c] * wx) * (1 - wy)
                         + (small_bg[y1, x0, c] * (1 - wx) + small_bg[y1, x1, c] * wx) * wy)
                    # the smallest change to (f, b) that reproduces the pixel (model/foreground.py fit_to_pixels)
                    step = (image[row, col, c] / 255.0 - a * f - (1 - a) * b) / weight
                    f = min(max(f + a * step, 0.0), 1.0)
                    if no_background:
                        value = f
                    else:
                        value = a * f + (1 - a) * (background[row, col, c] / 255.0)
                    out[row, col, c] = np.uint8(min(max(value * 255.0 + 0.5, 0.0), 255.0))

    return paint
