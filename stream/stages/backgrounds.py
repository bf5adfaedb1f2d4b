"""Backgrounds a frame is composited over: a colour, an image, a looping video, the blurred frame itself,
parsed from the `--background` spec; images and videos are cover-fitted to the frame."""
from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.errors import P3MError
from model.imageio import ImageTooLarge, read_rgb
from stream.decoding import NoVideoStream, VideoReader

if TYPE_CHECKING:                   # torch is imported where a path uses it: the default CPU job needs none
    import torch

    Alpha = np.ndarray | torch.Tensor   # an H×W alpha: numpy on the CPU path, a tensor on a device path

log = logging.getLogger(__name__)
COLOURS = {"green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0), "white": (255, 255, 255)}
ACCEPTED = (f"{', '.join(COLOURS)}, #RRGGBB, blur or blur:SIGMA (pixels), transparent, "
            "or the path of an image or video file")


def cover_fit(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """`image` scaled to cover `size` (width, height) and centre-cropped to it."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    # At least one pixel: a 1×1 colour covering a 4097×17 frame would otherwise crop to 0 rows.
    crop_w, crop_h = min(w, max(1, round(width / scale))), min(h, max(1, round(height / scale)))
    x, y = (w - crop_w) // 2, (h - crop_h) // 2
    return cv2.resize(image[y:y + crop_h, x:x + crop_w], (width, height), interpolation=interpolation)


class Background:
    """What a frame is composited over; `stateless` when each frame's background depends on that frame alone."""

    stateless = True

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The H×W×3 uint8 background for a frame of `size` (width, height)."""
        raise NotImplementedError

    def render_tensor(self, images: torch.Tensor) -> torch.Tensor | None:
        """`render` for N×H×W×3 uint8 frames on a device, there; None where only the host renders it (the
        caller then uploads `render`'s pictures)."""
        return None

    def close(self) -> None:
        pass


class _Still(Background):
    """A solid colour or a picture, fitted once per frame size."""

    def __init__(self, picture: np.ndarray) -> None:
        self.picture = picture
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if self._cache is None or self._cache[0] != size:
            self._cache = (size, cover_fit(self.picture, size))
        return self._cache[1]


class _Video(Background):
    """A video file, decoded frame by frame (stream/decoding.py) and looped: one background frame per frame."""

    stateless = False           # it moves on a frame per call

    def __init__(self, path: Path) -> None:
        frames = _loop_video(path)
        first = next(frames)  # raises here, at construction, for a file without a decodable video
        self._frames = itertools.chain([first], frames)
        self._source = frames

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cover_fit(next(self._frames), size, cv2.INTER_LINEAR)

    def close(self) -> None:
        self._source.close()  # GeneratorExit closes the open container


class _Blur(Background):
    """The frame itself, Gaussian-blurred with `sigma` pixels."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        small_w, small_h, sigma = self._shrunk(*size)
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma)
        return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)

    def _shrunk(self, width: int, height: int) -> tuple[int, int, float]:
        """Where the blur runs for a frame of this size: 1/f of it, with sigma/f ≈ 4 px (then upsampled: close to
        the direct blur, whose kernel grows with sigma, at a fraction of its cost)."""
        f = max(1, int(self.sigma // 4))
        return max(1, width // f), max(1, height // f), self.sigma / f

    def render_tensor(self, images: torch.Tensor) -> torch.Tensor | None:
        """`render` for a batch where it is (N×H×W×3 uint8 on a device → the same there): the same shrink,
        OpenCV's 8-bit Gaussian kernel and border, and bilinear upsampling, in float; within a few grey levels
        of `render` (the most where the shrink is not by a whole factor). On CUDA it spares the host the blur
        and an upload. None when the kernel is wider than the shrunk frame (a tiny frame): `render` does those."""
        import torch
        import torch.nn.functional as F

        n, height, width = images.shape[:3]
        small_w, small_h, sigma = self._shrunk(width, height)
        radius = (int(sigma * 6 + 1.5) | 1) // 2           # OpenCV's size for 8-bit images: round(6σ + 1) | 1
        if radius >= min(small_h, small_w):                 # reflection needs the border inside the image
            return None
        x = images.permute(0, 3, 1, 2).float()
        small = F.interpolate(x, size=(small_h, small_w), mode="area")
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=images.device)
        kernel = torch.exp(-taps * taps / (2 * sigma * sigma))
        kernel = (kernel / kernel.sum()).float()
        planes = F.pad(small, (radius,) * 4, mode="reflect").reshape(n * 3, 1, small_h + 2 * radius, -1)
        planes = F.conv2d(F.conv2d(planes, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
        small = planes.reshape(n, 3, small_h, small_w).round()          # OpenCV's blur rounds to 8 bits
        big = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
        return big.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _loop_video(path: Path) -> Iterator[np.ndarray]:
    """RGB frames of the video at `path`, upright, from the start again at its end, forever."""
    while True:
        reader = VideoReader(str(path), name="the file")    # at least one frame, or raises
        count = 0
        try:
            for image, _ in reader:
                count += 1
                yield image
        except P3MError as e:               # damaged mid-way: loop what decoded
            log.warning("background %s: decoding stopped after %d frames (%s); looping those", path, count, e.message)
        finally:
            reader.close()


def background_file(spec: str) -> str | None:
    """The file a `--background` spec reads (None for a colour, blur or transparent), as `parse_background`
    tells them apart."""
    word = spec.strip().lower()
    if word == "transparent" or word in COLOURS or word.startswith("#") or word == "blur" or word.startswith("blur:"):
        return None
    return str(Path(spec).expanduser())


def parse_background(spec: str) -> Background | None:
    """The background for a spec string (None for transparent); every error names the value."""
    word = spec.strip().lower()
    if word == "transparent":
        return None
    if word in COLOURS:
        return _Still(np.array(COLOURS[word], np.uint8).reshape(1, 1, 3))
    if word.startswith("#"):
        if not re.fullmatch(r"#[0-9a-f]{6}", word):
            raise P3MError(f"background {spec!r}: not a #RRGGBB colour", f"background can be: {ACCEPTED}")
        rgb = [int(word[i:i + 2], 16) for i in (1, 3, 5)]
        return _Still(np.array(rgb, np.uint8).reshape(1, 1, 3))
    if word == "blur" or word.startswith("blur:"):
        return _Blur(_blur_sigma(spec, word))
    path = Path(spec).expanduser()
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file (a device or a pipe)"
        raise P3MError(f"background {spec!r} is {what}", "give an image or video file")
    if not path.is_file():
        looks_like_path = path.suffix != "" or "/" in spec or "\\" in spec
        what = "background file not found" if looks_like_path else "unknown background"
        raise P3MError(f"{what}: {spec!r}", f"background can be: {ACCEPTED}")
    try:
        return _Still(read_rgb(path))
    except ImageTooLarge as e:
        raise P3MError(f"background {e.message}", e.hint) from None
    except P3MError:
        pass  # not an image OpenCV reads: try it as a video
    try:
        return _Video(path)
    except NoVideoStream as e:
        raise P3MError(f"background {spec!r}: {e.message}", f"background can be: {ACCEPTED}") from None
    except P3MError as e:
        raise P3MError(f"background {spec!r}: neither an image nor a video that can be decoded ({e.message})",
                       f"background can be: {ACCEPTED}") from None


def _blur_sigma(spec: str, word: str) -> float:
    if word == "blur":
        return 20.0
    try:
        sigma = float(word.split(":", 1)[1])
    except ValueError:
        sigma = -1.0
    if not 0 < sigma <= 500:
        raise P3MError(f"background {spec!r}: blur strength must be a number of pixels in (0, 500]",
                       "e.g. blur:20 (the default is blur = blur:20)")
    return sigma
