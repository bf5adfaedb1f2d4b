"""Compositing: the matted person over a background (stream/stages/backgrounds.py), or RGBA output, with the
person's own colours at partial-alpha edges (model/foreground.py: no halo of the old background)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.foreground_band import composite, warm_up
from model.matte_tuning import SPILL_CHANNELS, suppress_spill
from stream.frames import Frame
from stream.stages.backgrounds import parse_background

if TYPE_CHECKING:                   # torch is imported where a path uses it: the default CPU job needs none
    import torch

    Alpha = np.ndarray | torch.Tensor   # an H×W alpha: numpy on the CPU path, a tensor on a device path


class Compositor:
    """Puts the matted person over a background: a colour, an image, a looping video, the blurred frame
    itself, or nothing (`transparent`: RGBA output with the alpha as the fourth channel).

    Images and videos are cover-fitted: scaled to cover the frame, then centre-cropped. With
    `foreground_estimation` (the default), where 0 < α < 1 the person's estimated colour F goes over the new
    background (F·α + B·(1 − α)) and into a transparent output's colour, instead of the frame's mix. `spill`
    (green | blue) takes a keyed screen's colour cast out of the person's colours first.
    """

    def __init__(self, background: str = "green", foreground_estimation: bool = True, spill: str = "off") -> None:
        self.spec = background
        self.foreground_estimation, self.spill = foreground_estimation, spill
        self._background = parse_background(background)
        self._uploaded: tuple[np.ndarray, torch.Tensor] | None = None     # composite_tensor's last background
        # imports while the job loads its model, not when the first frame comes
        self._warm_up = warm_up() if foreground_estimation else None

    def wait_ready(self) -> None:
        """Return once the warm-up's imports are done (at once without foreground estimation): live waits here
        before its camera starts, so the first frames do not queue up behind a second of imports."""
        while self._warm_up is not None and self._warm_up.is_alive():
            self._warm_up.join(0.1)             # in steps: Ctrl-C reaches the waiting thread

    @property
    def transparent(self) -> bool:
        """True when the output is RGBA."""
        return self._background is None

    @property
    def stateless(self) -> bool:
        """True when each frame's background depends on that frame alone (not a looping video, which moves
        on a frame per call): then another Compositor of the same `spec` composites any frame alike."""
        return self._background is None or self._background.stateless

    def process(self, frame: Frame) -> Frame:
        if frame.output is not None:        # composited already (the live matting worker, on the device)
            return frame
        if frame.alpha is None:
            raise ValueError(f"frame {frame.index} has no alpha: run the matting stage first")
        alpha8 = cv2.convertScaleAbs(frame.alpha, alpha=255.0)  # rounds and saturates
        image = suppress_spill(frame.image, self.spill)        # the person's colours (a copy when changed)
        height, width = frame.image.shape[:2]
        background = None
        if self._background is not None:
            background = self._background.render(frame.image, (width, height))     # blur: of the frame as it is
        if self.foreground_estimation:
            frame.output = np.empty((height, width, 3 if background is not None else 4), np.uint8)
            composite(image, frame.alpha, alpha8, frame.output, background)
        elif background is None:
            frame.output = cv2.merge([*cv2.split(image), alpha8])  # faster than np.dstack
        else:
            frame.output = blend(image, background, frame.alpha)
        return frame

    def composite_tensor(self, images: torch.Tensor, alphas: torch.Tensor,
                         sources: Sequence[np.ndarray]) -> torch.Tensor:
        """`process` on a batch already on a device: N×H×W×3 uint8 `images` and N×H×W float `alphas` there →
        N×H×W×3 (or ×4, transparent) uint8 there. Backgrounds are rendered from the host `sources` as `process`
        renders them and uploaded; a still one once. Within one grey level of `process` without foreground
        estimation, a few at edges with it (model/foreground_torch.py solves as pymatting does, not alike)."""
        import torch

        a = alphas.unsqueeze(-1)
        frames = images
        if self.spill != "off":             # as suppress_spill does on the host
            keyed, c1, c2 = SPILL_CHANNELS[self.spill]
            images = images.clone()
            images[..., keyed] = torch.minimum(images[..., keyed], torch.maximum(images[..., c1], images[..., c2]))
        colours = images
        if self.foreground_estimation:
            from model.foreground_torch import foreground_tensor

            colours = foreground_tensor(images, alphas).mul_(255)
        if self._background is None:
            colours = colours if colours is images else colours.round_().to(torch.uint8)
            return torch.cat([colours, a.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)], dim=-1)
        background = self._background.render_tensor(frames)     # blur: of the frames as they are
        if background is None:
            height, width = images.shape[1:3]
            pictures = [self._background.render(image, (width, height)) for image in sources]
            if all(p is pictures[0] for p in pictures):         # a still: one upload, broadcast over the batch
                background = self._on_device(pictures[0], images.device)[None]
            else:
                background = torch.stack([self._on_device(p, images.device) for p in pictures])
        return torch.lerp(background.float(), colours.float(), a).round_().clamp_(0, 255).to(torch.uint8)

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
    OpenCV, within one grey level of the exactly rounded mix and exact where a is 0 or 1, for less CPU than
    blendLinear's float."""
    a8 = cv2.convertScaleAbs(alpha, alpha=255.0)                   # rounds and saturates
    a3 = cv2.merge([a8, a8, a8])
    front = cv2.multiply(foreground, a3, scale=1 / 255)
    back = cv2.multiply(background, cv2.bitwise_not(a3), scale=1 / 255)
    return cv2.add(front, back, dst=front)
