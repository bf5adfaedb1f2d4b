"""Reading and writing still images (RGB in, 8-bit mattes and RGBA cut-outs out)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from model.errors import P3MError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")   # what read_rgb reads, preferred first
# The largest image read: 8192×8192 (an 8K frame is 33 MP). A few KB of PNG can declare far more (a 20000×20000
# PNG of 1 MB decodes to 1.2 GB and takes several times that on its way through a job); beyond it we refuse.
MAX_PIXELS = 8192 * 8192


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, without decoding it (Pillow reads headers lazily); None when
    Pillow does not know the format (OpenCV may still read it)."""
    from PIL import Image, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None     # Pillow's own limit refuses without the size; ours names it (nothing decodes)
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


class ImageTooLarge(P3MError):
    """An image whose header declares more than MAX_PIXELS pixels."""


def check_image_size(path: str | Path, what: str = "image") -> None:
    """P3MError when the header of `path` declares more than MAX_PIXELS pixels (checked before decoding)."""
    size = image_size(path)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageTooLarge(f"{what} {path} is {size[0]}x{size[1]}: over the limit of {MAX_PIXELS // 1_000_000} "
                            "megapixels (8192x8192)", "scale it down, e.g. ffmpeg -i in.png -vf scale=4096:-1 out.png")


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (alpha dropped, grey expanded); P3MError for one over MAX_PIXELS."""
    check_image_size(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise P3MError(f"cannot read image {path}", "is it a JPEG/PNG/BMP/WebP/TIFF file?")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """H×W uint8, as `cv2.imread(path, 0)` (alpha mattes, trimaps, face masks)."""
    check_image_size(path)
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


def write_png(path: str | Path, image: np.ndarray) -> None:
    """An H×W×3 RGB or H×W×4 RGBA uint8 image (a composite, a straight-alpha cut-out) as a PNG."""
    _write(path, cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR))


def _write(path: str | Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise P3MError(f"cannot write {path}", "check that the folder exists and is writable")
