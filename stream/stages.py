"""The per-frame stages: matting (resize → model → upsample), temporal smoothing and compositing.

Each stage is a small object with `process(frame) -> frame` (it fills in `frame.alpha` or
`frame.output` and returns the same frame) and `close()`. Stages hold no threads and no queues:
stream/pipeline.py runs each in its own thread, in live and offline mode alike.
"""
from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import av
import cv2
import numpy as np

from model.errors import P3MError
from model.matters import Matter
from stream.frames import Frame
from stream.pipeline import Stage
from model.imageio import read_rgb
from stream.guided import GUIDED_EPS, GUIDED_RADIUS, guided_upsample_gray_cpu

if TYPE_CHECKING:                   # torch is imported where a path uses it: the default CPU job needs none
    import torch

    Alpha = np.ndarray | torch.Tensor   # an H×W alpha: numpy on the CPU path, a tensor on a device path

log = logging.getLogger(__name__)


class MattingStage:
    """Runs `matter` on the frame shrunk to `infer_size` (long side), then upsamples the alpha to full size:
    `guided` snaps its edges to the frame's (fast guided filter, `radius` in model pixels), `bilinear` does not.
    The stage owns `matter` and closes it. A CUDA matter gets the device path (stream/device_matting.py:
    upload once, all of it on the GPU); `batch_size` > 1 lets an offline pipeline call `process_batch`.
    """

    UPSAMPLERS = ("guided", "bilinear")
    GUIDES = ("gray", "rgb")

    def __init__(self, matter: Matter, infer_size: int = 512, upsample: str = "guided",
                 radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, guide: str = "gray",
                 batch_size: int = 1) -> None:
        m = matter.size_multiple
        if not isinstance(infer_size, int) or infer_size < m or infer_size % m:
            raise P3MError(f"infer_size {infer_size!r} does not suit {matter.describe()}: "
                           f"it needs a positive multiple of {m}",
                           f"use e.g. {max(m, 512 // m * m)} (sizes in steps of {m})")
        if upsample not in self.UPSAMPLERS:
            raise P3MError(f"unknown upsample {upsample!r}", f"use one of: {', '.join(self.UPSAMPLERS)}")
        if guide not in self.GUIDES:
            raise P3MError(f"unknown guide {guide!r}", f"use one of: {', '.join(self.GUIDES)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise P3MError(f"batch {batch_size!r} is not a positive whole number", "use e.g. 1 or 8")
        self.matter = matter
        self.batch_size = batch_size
        self.infer_size = infer_size
        self.upsample = upsample
        self.radius, self.eps, self.guide = radius, eps, guide
        self.device = str(matter.device)
        # Gray guide by default: on the 14 portraits (MediaPipe at 512) it gets two thirds of the RGB
        # guide's gain over bilinear at a third of its cost (5 vs 15 ms at 720p on 2 cores).
        self._opencv_only = upsample == "guided" and guide == "gray" and self.device == "cpu"
        if not self._opencv_only:
            import torch  # noqa: F401 - loaded here, before the job sets its thread count (offline.limit_threads)
        self.device_path = None
        if self.device.startswith("cuda"):
            from stream.device_matting import DeviceMatting

            self.device_path = DeviceMatting(matter, self.infer_shape, upsample=upsample, radius=radius, eps=eps,
                                             guide=guide, batch_size=batch_size)

    def infer_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the model sees: long side `infer_size`, short side scaled and rounded to the size multiple."""
        m = self.matter.size_multiple
        short = min(height, width) * self.infer_size / max(height, width)
        short = max(m, int(short / m + 0.5) * m)  # half up: round() would take 4.5 to 4
        return (self.infer_size, short) if height >= width else (short, self.infer_size)

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """Several frames through the model at once (offline batching): the same alphas as `process`."""
        if self.device_path is not None:
            self.device_path.alphas(frames)
            return frames
        for frame, (small, alpha) in zip(frames, self._matte_small(frames)):
            self._upsample(frame, small, alpha)
        return frames

    def split(self) -> list[Stage]:
        """This stage as two pipeline stages, the model (with its shrink; it leaves `frame.alpha` at the model's
        resolution) and the upsampling (to full resolution), so that they run on two threads (the CPU offline
        job at 720p on 2 cores, A/B: 50-52 → 53-54 fps). The second closes this stage. Not for a CUDA matter,
        whose device path does both in one go."""
        if self.device_path is not None:
            raise ValueError("a CUDA matting stage is not split: its device path shrinks, mattes and upsamples at once")
        return [_ModelStep(self), _UpsampleStep(self)]

    def _matte_small(self, frames: list[Frame]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each frame shrunk to the model's size, with the model's alpha for it (CPU path)."""
        smalls = [self._small(frame) for frame in frames]
        return list(zip(smalls, self.matter.matte_batch(smalls)))

    def _small(self, frame: Frame) -> np.ndarray:
        h, w = self.infer_shape(*frame.image.shape[:2])
        return _shrink(frame.image, (w, h))

    def _upsample(self, frame: Frame, small: np.ndarray, alpha_small: np.ndarray) -> None:
        if self._opencv_only:                    # the default: no torch
            gray_lr, gray_hr = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (small, frame.image))
            frame.alpha = guided_upsample_gray_cpu(alpha_small, gray_lr, gray_hr, self.radius, self.eps)
            return
        import torch

        from stream.refine import bilinear_upsample, guided_upsample, image_to_guide

        height, width = frame.image.shape[:2]
        gray = self.guide == "gray"
        alpha = torch.from_numpy(np.asarray(alpha_small, np.float32))[None, None].to(self.device)
        if self.upsample == "bilinear":
            alpha = bilinear_upsample(alpha, (height, width))
        else:
            alpha = guided_upsample(alpha, image_to_guide(frame.image, gray, self.device), self.radius,
                                    self.eps, guide_lr=image_to_guide(small, gray, self.device))
        frame.alpha = alpha[0, 0].cpu().numpy()

    def close(self) -> None:
        if self.device_path is not None:
            self.device_path.close()
        self.matter.close()


class _ModelStep:
    """MattingStage.split's first half: shrink and model. `frame.alpha` is the model's alpha; the shrunk image
    (the upsampling's guide) rides in `frame.extras`."""

    name = "matting"

    def __init__(self, matting: MattingStage) -> None:
        self.matting, self.batch_size = matting, matting.batch_size

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        for frame, (small, alpha) in zip(frames, self.matting._matte_small(frames)):
            frame.alpha, frame.extras["matting"] = alpha, small
        return frames

    def close(self) -> None:
        pass                      # the upsampling step closes the stage: the matter is still needed there


class _UpsampleStep:
    """MattingStage.split's second half: `frame.alpha` up to full resolution; closes the matting stage."""

    name = "upsampling"

    def __init__(self, matting: MattingStage) -> None:
        self.matting = matting

    def process(self, frame: Frame) -> Frame:
        self.matting._upsample(frame, frame.extras.pop("matting"), frame.alpha)
        return frame

    def close(self) -> None:
        self.matting.close()


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to `size` (width, height): exact 2× box averages while the image is at least twice the size,
    then bilinear. Within a grey level of OpenCV's area resize (0.8 at 720p → 512×288) and as good for the
    matte (14 portraits at 720p, mean |α − P3M-Net's|: 0.0140 either way) for less than its fast form's cost
    (0.7 vs 1.2 ms at 720p, 1.2 vs 1.6 at 1080p: bilinear to twice the size, then area; area alone: 3-4 ms)."""
    width, height = size
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        h, w = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)   # even sizes: exact 2×
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


class TemporalSmoother:
    """Per pixel out = w·prev + (1 − w)·new with w = strength·(1 − |2·new − 1|): confident pixels take the new
    alpha at once (a moving silhouette does not trail), uncertain ones average over frames (less flicker).
    Resets on a size change or a scene cut (64×36 gray thumbnails differ by more than `cut_threshold`).
    """

    def __init__(self, strength: float = 0.5, enabled: bool = True, cut_threshold: float = 0.2) -> None:
        if not 0.0 <= strength <= 1.0:
            raise P3MError(f"smoothing strength {strength} is outside [0, 1]",
                           "0 follows each frame, 1 blends uncertain pixels the most")
        self.strength, self.enabled = strength, enabled
        self.cut_threshold = cut_threshold
        self._prev: Alpha | None = None
        self._thumb: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """False when smoothing is off (or has no strength): frames pass unchanged."""
        return self.enabled and self.strength > 0.0

    def process(self, frame: Frame) -> Frame:
        if self.active:
            frame.alpha = self.smooth(frame.alpha, frame.image)
        return frame

    def smooth(self, new: Alpha, image: np.ndarray) -> Alpha:
        """The H×W alpha `new` (a numpy array, or a tensor on any device) of the frame `image`, blended with
        the previous one. Returns `new` itself on a first frame or a cut, and keeps what it returns: do not
        change it later."""
        step = max(1, min(image.shape[0] // 72, image.shape[1] // 128))   # every step-th pixel: 1.5 → 0.1 ms
        thumb = cv2.cvtColor(cv2.resize(image[::step, ::step], (64, 36), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_RGB2GRAY)
        prev, last_thumb = self._prev, self._thumb
        self._thumb = thumb
        same_kind = type(prev) is type(new) and getattr(prev, "device", None) == getattr(new, "device", None)
        if prev is None or not same_kind or prev.shape != new.shape or self._is_cut(last_thumb, thumb):
            self._prev = new
            return new
        # An exponent on the uncertainty, or a gate on |new − prev|, only moved along the same lag/flicker
        # trade-off on synthetic clips, so the weight stays linear. The same arithmetic serves numpy arrays
        # (the CPU path, at the model's resolution) and torch tensors (the device path).
        weight = (1.0 - 2.0 * abs(new - 0.5)) * self.strength
        out = new + (prev - new) * weight
        self._prev = out
        return out

    def _is_cut(self, last: np.ndarray | None, thumb: np.ndarray) -> bool:
        if last is None or last.shape != thumb.shape:
            return True
        return float(cv2.absdiff(last, thumb).mean()) / 255.0 > self.cut_threshold

    def reset(self) -> None:
        """Forget the previous frame (e.g. after a seek)."""
        self._prev = self._thumb = None

    def close(self) -> None:
        self.reset()


COLOURS = {"green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0), "white": (255, 255, 255)}
ACCEPTED = (f"{', '.join(COLOURS)}, #RRGGBB, blur or blur:SIGMA (pixels), transparent, "
            "or the path of an image or video file")


class Compositor:
    """Puts the matted person over a background: a colour, an image, a looping video, the blurred frame
    itself, or nothing (`transparent`: RGBA output with the alpha as the fourth channel).

    Images and videos are cover-fitted: scaled to cover the frame, then centre-cropped.
    """

    def __init__(self, background: str = "green") -> None:
        self.spec = background
        self._background = _parse_background(background)
        self._uploaded: tuple[np.ndarray, torch.Tensor] | None = None     # composite_tensor's last background

    @property
    def transparent(self) -> bool:
        """True when the output is RGBA."""
        return self._background is None

    @property
    def stateless(self) -> bool:
        """True when each frame's background depends on that frame alone (not a looping video, which moves
        on a frame per call): then another Compositor of the same `spec` composites any frame alike."""
        return not isinstance(self._background, _Video)

    def process(self, frame: Frame) -> Frame:
        if frame.output is not None:        # composited already (the live matting worker, on the device)
            return frame
        if frame.alpha is None:
            raise ValueError(f"frame {frame.index} has no alpha: run the matting stage first")
        if self._background is None:
            alpha8 = cv2.convertScaleAbs(frame.alpha, alpha=255.0)  # rounds and saturates
            frame.output = cv2.merge([*cv2.split(frame.image), alpha8])  # ~8× faster than np.dstack
            return frame
        height, width = frame.image.shape[:2]
        background = self._background.render(frame.image, (width, height))
        frame.output = blend(frame.image, background, frame.alpha)
        return frame

    def composite_tensor(self, images: torch.Tensor, alphas: torch.Tensor,
                         sources: Sequence[np.ndarray]) -> torch.Tensor:
        """`process` on a batch already on a device: N×H×W×3 uint8 `images` and N×H×W float `alphas` there →
        N×H×W×3 (or ×4, transparent) uint8 there. Backgrounds are rendered from the host `sources` as `process`
        renders them and uploaded; a still one once. Within one grey level of `process`."""
        import torch

        a = alphas.unsqueeze(-1)
        if self._background is None:
            return torch.cat([images, a.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)], dim=-1)
        background = self._background.render_tensor(images)
        if background is None:
            height, width = images.shape[1:3]
            pictures = [self._background.render(image, (width, height)) for image in sources]
            if all(p is pictures[0] for p in pictures):         # a still: one upload, broadcast over the batch
                background = self._on_device(pictures[0], images.device)[None]
            else:
                background = torch.stack([self._on_device(p, images.device) for p in pictures])
        return torch.lerp(background.float(), images.float(), a).round_().clamp_(0, 255).to(torch.uint8)

    def _on_device(self, picture: np.ndarray, device: torch.device) -> torch.Tensor:
        import torch

        if self._uploaded is not None and self._uploaded[0] is picture and self._uploaded[1].device == device:
            return self._uploaded[1]
        tensor = torch.from_numpy(np.ascontiguousarray(picture))
        if device.type == "cuda":       # pinned, so the copy is queued: a pageable one waits for the GPU's queue
            tensor = tensor.pin_memory()
        tensor = tensor.to(device, non_blocking=True)
        self._uploaded = (picture, tensor)           # a still background renders the same array every frame
        return tensor

    def close(self) -> None:
        self._uploaded = None
        if self._background is not None:
            self._background.close()


def blend(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """a·fg + (1 − a)·bg for H×W×3 uint8 images and an H×W float alpha in [0, 1]: 8-bit fixed point in
    OpenCV, within one grey level of the exactly rounded mix (a quarter of pixels are off by one), exact where
    a is 0 or 1; 2.0 ms at 720p on one core where blendLinear's float takes 4.0 ms."""
    a8 = cv2.convertScaleAbs(alpha, alpha=255.0)                   # rounds and saturates
    a3 = cv2.merge([a8, a8, a8])
    front = cv2.multiply(foreground, a3, scale=1 / 255)
    back = cv2.multiply(background, cv2.bitwise_not(a3), scale=1 / 255)
    return cv2.add(front, back, dst=front)


def cover_fit(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """`image` scaled to cover `size` (width, height) and centre-cropped to it."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    # At least one pixel: a 1×1 colour covering a 4097×17 frame would otherwise crop to 0 rows.
    crop_w, crop_h = min(w, max(1, round(width / scale))), min(h, max(1, round(height / scale)))
    x, y = (w - crop_w) // 2, (h - crop_h) // 2
    return cv2.resize(image[y:y + crop_h, x:x + crop_w], (width, height), interpolation=interpolation)


class _Background:
    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The H×W×3 uint8 background for a frame of `size` (width, height)."""
        raise NotImplementedError

    def render_tensor(self, images: torch.Tensor) -> torch.Tensor | None:
        """`render` for N×H×W×3 uint8 frames on a device, there; None where only the host renders it (the
        caller then uploads `render`'s pictures)."""
        return None

    def close(self) -> None:
        pass


class _Still(_Background):
    """A solid colour or a picture, fitted once per frame size."""

    def __init__(self, picture: np.ndarray) -> None:
        self.picture = picture
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if self._cache is None or self._cache[0] != size:
            self._cache = (size, cover_fit(self.picture, size))
        return self._cache[1]


class _Video(_Background):
    """A video file, decoded frame by frame with PyAV and looped: one background frame per frame."""

    def __init__(self, path: Path) -> None:
        frames = _loop_video(path)
        first = next(frames)  # raises here, at construction, for a file without decodable video
        self._frames = itertools.chain([first], frames)
        self._source = frames

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cover_fit(next(self._frames), size, cv2.INTER_LINEAR)

    def close(self) -> None:
        self._source.close()  # GeneratorExit closes the open container


class _Blur(_Background):
    """The frame itself, Gaussian-blurred with `sigma` pixels."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def render(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        small_w, small_h, sigma = self._shrunk(*size)
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma)
        return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)

    def _shrunk(self, width: int, height: int) -> tuple[int, int, float]:
        """Where the blur runs for a frame of this size: 1/f of it, with sigma/f ≈ 4 px (then upsampled: within
        0.3 grey levels of the direct blur and 4-200× faster, the direct kernel growing with sigma)."""
        f = max(1, int(self.sigma // 4))
        return max(1, width // f), max(1, height // f), self.sigma / f

    def render_tensor(self, images: torch.Tensor) -> torch.Tensor | None:
        """`render` for a batch where it is (N×H×W×3 uint8 on a device → the same there): the same shrink,
        OpenCV's 8-bit Gaussian kernel and border, and bilinear upsampling, in float; within 2-5 grey levels
        of `render` (mean 0.1-0.5; the most where the shrink is not by a whole factor). On CUDA it spares
        the host 4-8 ms a 1080p frame (one core here) and an upload. None when the kernel is wider than the
        shrunk frame (a tiny frame): `render` does those."""
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
    """RGB frames of the video at `path`, from the start again at its end, forever."""
    while True:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise P3MError(f"background {str(path)!r}: the file has no video stream",
                               f"background can be: {ACCEPTED}")
            count = 0
            try:
                for frame in container.decode(video=0):
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
            except av.FFmpegError as e:       # damaged mid-way: loop what decoded, or fail naming the file
                if count == 0:
                    raise
                log.warning("background %s: decoding stopped after %d frames (%s); looping those",
                            path, count, e.strerror or e)
        if count == 0:
            raise P3MError(f"background {str(path)!r}: the video has no frames", f"background can be: {ACCEPTED}")


def _parse_background(spec: str) -> _Background | None:
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
    if not path.is_file():
        looks_like_path = path.suffix != "" or "/" in spec or "\\" in spec
        what = "background file not found" if looks_like_path else "unknown background"
        raise P3MError(f"{what}: {spec!r}", f"background can be: {ACCEPTED}")
    try:
        return _Still(read_rgb(path))
    except P3MError:
        pass  # not an image OpenCV reads: try it as a video
    try:
        return _Video(path)
    except av.FFmpegError as e:
        raise P3MError(f"background {spec!r}: neither an image nor a video that can be decoded "
                       f"({e.strerror or e})", f"background can be: {ACCEPTED}") from None


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
