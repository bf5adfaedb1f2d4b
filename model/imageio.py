"""Reading and writing still images (RGB in, 8-bit mattes and RGBA cut-outs out)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")   # what read_rgb reads, preferred first


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (alpha dropped, grey expanded)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise P3MError(f"cannot read image {path}", "is it a JPEG/PNG/BMP/WebP/TIFF file?")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """H×W uint8, as `cv2.imread(path, 0)` (alpha mattes, trimaps, face masks)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise P3MError(f"cannot read image {path}", "is it a valid PNG/JPEG file?")
    return image


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """trunc(255·alpha), as the official P3M code saves its mattes."""
    return (np.clip(alpha, 0.0, 1.0) * 255).astype(np.uint8)


def write_alpha_png(path: str | Path, alpha: np.ndarray) -> None:
    """An H×W float matte in [0, 1] as an 8-bit grayscale PNG."""
    _write(path, alpha_to_uint8(alpha))


def write_rgba_png(path: str | Path, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """The cut-out: the image's colours with the matte as (straight) alpha channel."""
    rgba = np.dstack([rgb, alpha_to_uint8(alpha)])
    _write(path, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


def _write(path: str | Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise P3MError(f"cannot write {path}", "check that the folder exists and is writable")
