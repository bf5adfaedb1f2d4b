"""Foreground colours where the matte is partial (decontamination), on the CPU.

An edge pixel is a mix, I = α·F + (1 − α)·B: compositing the frame's own colour I over a new background
carries the old background B into it (a halo, green spill). We estimate F and B where 0 < α < 1 with
multi-level foreground estimation (Germer et al. 2020, pymatting's `estimate_foreground_ml`) at a reduced
size (`work_size`: F and B are smooth, the solver's time grows with the pixels), then fit each edge pixel of
the full-size frame exactly: the smallest change to the upsampled (F, B) that makes α·F + (1 − α)·B = I,
which restores the detail the reduced size lost. Only the edge band's pixels are touched at full size.

stream/stages/compositing.py uses this for every composite and transparent output; model/foreground_torch.py
is the same on a device (torch, for CUDA).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIZE = 128          # long side F and B are solved at: the CPU budget of a 720p frame (bench/RESULTS.md)
_REMAP_ROW = 4096


@dataclass(frozen=True)
class EdgeBand:
    """The pixels of an H×W frame with 0 < α < 1 (in 8-bit steps), their α, and their foreground and
    background colours (N×3 float32 in [0, 1], as `estimate_band` fitted them)."""

    index: np.ndarray          # flat pixel indices, N
    alpha: np.ndarray          # N×1 float32
    foreground: np.ndarray     # N×3 float32
    background: np.ndarray     # N×3 float32

    def composite(self, background: np.ndarray) -> np.ndarray:
        """α·F + (1 − α)·`background` at the band's pixels: N×3 uint8 from an H×W×3 uint8 background."""
        new = background.reshape(-1, 3)[self.index].astype(np.float32) * (1 / 255)
        mix = self.foreground * self.alpha + new * (1 - self.alpha)
        return _to_uint8(mix)

    def foreground_uint8(self) -> np.ndarray:
        """F at the band's pixels, N×3 uint8."""
        return _to_uint8(self.foreground)


def edge_band(alpha8: np.ndarray) -> np.ndarray:
    """Flat indices of the pixels of an 8-bit alpha that are neither 0 nor 255 (what an output shows)."""
    return np.flatnonzero(cv2.inRange(alpha8, 1, 254).view(bool))     # as bool: numpy's fast path


def estimate_band(image: np.ndarray, alpha: np.ndarray, work_size: int = WORK_SIZE,
                  alpha8: np.ndarray | None = None) -> EdgeBand | None:
    """F and B at the edge band of `image` (H×W×3 uint8 RGB) under `alpha` (H×W float in [0, 1]); None when
    no pixel is partial. Solved at `work_size` (long side; the full size when smaller), fitted at full size.
    `alpha8`: the alpha rounded to 8 bits, when the caller has it."""
    if alpha8 is None:
        alpha8 = cv2.convertScaleAbs(alpha, alpha=255.0)         # rounds and saturates, as the composite does
    index = edge_band(alpha8)
    if index.size == 0:
        return None
    height, width = alpha.shape
    fg, bg = solve_small(image, alpha, work_size)
    priors = _sample(np.concatenate([fg, bg], axis=2), index, (height, width))      # one pass for F and B
    prior_fg, prior_bg = priors[:, :3], priors[:, 3:]
    a = alpha.reshape(-1)[index].astype(np.float32)[:, None]
    colour = image.reshape(-1, 3)[index].astype(np.float32) * (1 / 255)
    fitted_fg, fitted_bg = fit_to_pixels(colour, a, prior_fg, prior_bg)
    return EdgeBand(index=index, alpha=a, foreground=fitted_fg, background=fitted_bg)


def solve_small(image: np.ndarray, alpha: np.ndarray, work_size: int) -> tuple[np.ndarray, np.ndarray]:
    """F and B (h×w×3 float32) of `image` under `alpha` at `work_size` (long side), by pymatting's solver."""
    height, width = alpha.shape
    scale = min(1.0, work_size / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = _shrink(image, size).astype(np.float32) * (1 / 255)
    small_alpha = _shrink(np.ascontiguousarray(alpha, dtype=np.float32), size).clip(0, 1)
    fg, bg = pymatting_ml()(small, small_alpha, return_background=True)
    return fg.astype(np.float32, copy=False), bg.astype(np.float32, copy=False)


def _shrink(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`picture` at `size`: bilinear to twice the size, then area: close to an area resize for a tenth
    of its time at 720p (the solver smooths what the sampling misses)."""
    height, width = picture.shape[:2]
    if size[0] * 2 < width and size[1] * 2 < height:
        picture = cv2.resize(picture, (size[0] * 2, size[1] * 2), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def fit_to_pixels(colour: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """The smallest change to (fg, bg) that makes α·F + (1 − α)·B equal `colour`, clipped to [0, 1]: the
    residual goes to F and B in proportion to α and 1 − α. Works on numpy arrays and torch tensors alike."""
    residual = colour - alpha * fg - (1 - alpha) * bg
    step = residual / (alpha * alpha + (1 - alpha) * (1 - alpha))
    return (fg + alpha * step).clip(0, 1), (bg + (1 - alpha) * step).clip(0, 1)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, work_size: int = WORK_SIZE) -> np.ndarray:
    """`image` with its edge band's colours replaced by the estimated foreground F (H×W×3 uint8): the
    colour channels of a cut-out with straight (not premultiplied) alpha."""
    out = image.copy()
    band = estimate_band(image, alpha, work_size)
    if band is not None:
        out.reshape(-1, 3)[band.index] = band.foreground_uint8()
    return out


def _sample(field: np.ndarray, index: np.ndarray, full: tuple[int, int]) -> np.ndarray:
    """Bilinear samples of the small h×w×C `field` at the full-size pixels `index` (pixel centres aligned,
    as cv2.resize aligns them): N×C, without making the full-size field."""
    height, width = full
    rows, cols = np.divmod(index, width)
    small_h, small_w = field.shape[:2]
    count = index.size
    shape = (-(-count // _REMAP_ROW), _REMAP_ROW)        # remap's maps must be under 32767 a side
    map_x = np.zeros(shape, np.float32)
    map_y = np.zeros(shape, np.float32)
    map_x.reshape(-1)[:count] = (cols + 0.5) * (small_w / width) - 0.5
    map_y.reshape(-1)[:count] = (rows + 0.5) * (small_h / height) - 0.5
    samples = cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return samples.reshape(-1, field.shape[2])[:count]


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return (values * 255 + 0.5).clip(0, 255).astype(np.uint8)


def pymatting_ml():
    """pymatting's solver, imported on first use: numba compiles pymatting on its first import after an
    install (about a minute, cached after that), and a job that composites nothing needs none of it."""
    import numba

    numba.set_num_threads(1)        # per calling thread: the pipeline runs a thread per stage already
    return _pymatting_ml()


@functools.cache
def _pymatting_ml():
    from pymatting import estimate_foreground_ml

    return estimate_foreground_ml
