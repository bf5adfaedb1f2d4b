"""The per-frame stages: matting (resize → model → upsample), temporal smoothing and compositing.

Each stage is a small object with `process(frame) -> frame` (it fills in `frame.alpha` or
`frame.output` and returns the same frame) and `close()`. Stages hold no threads and no queues:
stream/pipeline/runner.py runs each in its own thread, in live and offline mode alike.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.errors import P3MError
from model.matters.base import Matter
from stream.frames import Frame
from stream.pipeline.queues import Cancelled
from stream.protocols import Stage
from stream.stages.guided_filter import GUIDED_EPS, GUIDED_RADIUS, UPSAMPLERS, guided_upsample_gray_cpu
from stream.stages.presence import PersonPresence

if TYPE_CHECKING:                   # torch is imported where a path uses it: the default CPU job needs none
    import torch

    Alpha = np.ndarray | torch.Tensor   # an H×W alpha: numpy on the CPU path, a tensor on a device path


SMALLEST_ALPHA = 1e-6     # an alpha below this is 0 (far under a grey level): no subnormal floats downstream


class MattingStage:
    """Runs `matter` on the frame shrunk to `infer_size` (long side), then upsamples the alpha to full size:
    `guided` snaps its edges to the frame's (fast guided filter, `radius` in model pixels), `bilinear` does not.
    The stage owns `matter` and closes it, unless `owns_matter` is False (a batch worker reusing one model
    for many videos). A CUDA matter gets the device path (device_matting.py:
    upload once, all of it on the GPU); `batch_size` > 1 lets an offline pipeline call `process_batch`.
    """

    UPSAMPLERS = UPSAMPLERS
    GUIDES = ("gray", "rgb")

    def __init__(self, matter: Matter, infer_size: int = 512, upsample: str = "guided",
                 radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, guide: str = "gray",
                 batch_size: int = 1, owns_matter: bool = True) -> None:
        m = matter.size_multiple
        if not isinstance(infer_size, int) or infer_size < m or infer_size % m:
            raise P3MError(f"infer_size {infer_size!r} does not suit {matter.describe()}: "
                           f"it needs a positive multiple of {m}",
                           f"use e.g. {max(m, 512 // m * m)} (sizes in steps of {m})")
        if infer_size < matter.min_size:
            raise P3MError(f"infer_size {infer_size} is too small for {matter.describe()}: it needs at least "
                           f"{matter.min_size}", f"use --infer-size {matter.min_size} or more")
        if upsample not in self.UPSAMPLERS:
            raise P3MError(f"unknown upsample {upsample!r}", f"use one of: {', '.join(self.UPSAMPLERS)}")
        if guide not in self.GUIDES:
            raise P3MError(f"unknown guide {guide!r}", f"use one of: {', '.join(self.GUIDES)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise P3MError(f"batch {batch_size!r} is not a positive whole number", "use e.g. 1 or 8")
        self.matter, self.owns_matter = matter, owns_matter
        self.batch_size = batch_size
        self.infer_size = infer_size
        self.upsample = upsample
        self.radius, self.eps, self.guide = radius, eps, guide
        self.presence = PersonPresence()     # frames without a person (CPU path: the model's alphas)
        self.device = str(matter.device)
        # Gray guide by default: most of the RGB guide's gain over bilinear at a fraction of its cost; on the
        # CPU, OpenCV then does it without torch.
        self._opencv_only = upsample == "guided" and guide == "gray" and self.device == "cpu"
        if not self._opencv_only:
            import torch  # noqa: F401 - loaded here, before the job sets its thread count (assembly.limit_threads)
        self.device_path = None
        if self.device.startswith("cuda"):
            from stream.stages.device_matting import DeviceMatting

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
        resolution) and the upsampling (to full resolution), so that they run on two threads, overlapping one
        frame's upsampling with the next one's model. Whichever ends last closes this stage (either may end first
        after Ctrl-C or an error). Not for a CUDA matter, whose device path does both in one go."""
        if self.device_path is not None:
            raise ValueError("a CUDA matting stage is not split: its device path shrinks, mattes and upsamples at once")
        steps_open = [2]
        lock = threading.Lock()

        def step_closed() -> None:
            with lock:
                steps_open[0] -= 1
                last = steps_open[0] == 0
            if last:
                self.close()

        return [_ModelStep(self, step_closed), _UpsampleStep(self, step_closed)]

    def _matte_small(self, frames: list[Frame]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each frame shrunk to the model's size, with the model's alpha for it (CPU path)."""
        smalls = [self._small(frame) for frame in frames]
        alphas = self.matter.matte_batch(smalls)
        for alpha in alphas:
            self.presence.add(alpha)
        return list(zip(smalls, alphas))

    def _small(self, frame: Frame) -> np.ndarray:
        h, w = self.infer_shape(*frame.image.shape[:2])
        return _shrink(frame.image, (w, h))

    def _upsample(self, frame: Frame, small: np.ndarray, alpha_small: np.ndarray) -> None:
        alpha_small = _without_subnormals(alpha_small)
        if self._opencv_only:                    # the default: no torch
            gray_lr, gray_hr = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (small, frame.image))
            frame.alpha = guided_upsample_gray_cpu(alpha_small, gray_lr, gray_hr, self.radius, self.eps)
            return
        import torch

        from stream.stages.guided_filter_torch import image_to_guide, upsample_alpha

        def guides() -> tuple[torch.Tensor, torch.Tensor]:
            gray = self.guide == "gray"
            return image_to_guide(frame.image, gray, self.device), image_to_guide(small, gray, self.device)

        alpha = torch.from_numpy(np.asarray(alpha_small, np.float32))[None, None].to(self.device)
        alpha = upsample_alpha(alpha, frame.image.shape[:2], self.upsample, guides, self.radius, self.eps)
        frame.alpha = alpha[0, 0].cpu().numpy()

    def close(self) -> None:
        if self.device_path is not None:
            self.device_path.close()
        if self.owns_matter:
            self.matter.close()


class _ModelStep:
    """MattingStage.split's first half: shrink and model. `frame.alpha` is the model's alpha; the shrunk image
    (the upsampling's guide) rides in `frame.extras`.

    A batch goes to the model in pieces of the matter's own `offline_batch`, and `should_stop` (the pipeline
    sets it) is looked at between pieces: Ctrl-C reaches a long batch in its middle, and a large `--batch`
    does not make the matter hold (MediaPipe: build) that many at once."""

    name = "matting"

    def __init__(self, matting: MattingStage, on_close: Callable[[], None]) -> None:
        self.matting, self.batch_size, self._on_close = matting, matting.batch_size, on_close
        self.piece = max(1, matting.matter.offline_batch)
        self.should_stop: Callable[[], bool] | None = None

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        for start in range(0, len(frames), self.piece):
            if start and self.should_stop is not None and self.should_stop():
                raise Cancelled
            piece = frames[start:start + self.piece]
            for frame, (small, alpha) in zip(piece, self.matting._matte_small(piece)):
                frame.alpha, frame.extras["matting"] = alpha, small
        return frames

    def close(self) -> None:
        self._on_close()


class _UpsampleStep:
    """MattingStage.split's second half: `frame.alpha` up to full resolution."""

    name = "upsampling"

    def __init__(self, matting: MattingStage, on_close: Callable[[], None]) -> None:
        self.matting, self._on_close = matting, on_close

    def process(self, frame: Frame) -> Frame:
        self.matting._upsample(frame, frame.extras.pop("matting"), frame.alpha)
        return frame

    def close(self) -> None:
        self._on_close()


def _without_subnormals(alpha: np.ndarray) -> np.ndarray:
    """`alpha` with values below SMALLEST_ALPHA set to 0. Models' sigmoids leave subnormal floats (MediaPipe's
    mask: ~1 % of its pixels), and arithmetic on them is many times slower: every full-size step after this one
    paid for it (bench/RESULTS.md)."""
    return cv2.threshold(np.asarray(alpha, np.float32), SMALLEST_ALPHA, 0.0, cv2.THRESH_TOZERO)[1]


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to `size` (width, height): exact 2× box averages while the image is at least twice the size,
    then bilinear. Within a grey level of OpenCV's area resize and as good for the matte, for less than area
    resizing costs (bench/RESULTS.md)."""
    width, height = size
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        h, w = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)   # even sizes: exact 2×
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
