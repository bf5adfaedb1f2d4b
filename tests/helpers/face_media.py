"""Generated face media for the privacy tests: a real face (scikit-image's astronaut) that moves, turns, shrinks
and grows, with its true box in every frame; a camera double that plays such frames live; and the check that
counts frames whose face a bundled detector still finds."""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from model.faces import FaceDetector, iou
from stream.frames import Frame
from stream.sources.live import LIVE_TIME_BASE, LiveSource

ASTRONAUT_FACE = (177.0, 82.0, 272.0, 177.0)     # the face's box in the 512×512 original (short-range detector)
FOUND = 0.5                                      # the detectors' own threshold: a face "found" at this or more
SAME_FACE = 0.3                                  # IoU with the true box for a detection to be that face


def moving_face(frames: int = 48, size: tuple[int, int] = (640, 360)) -> tuple[list[np.ndarray], list[tuple]]:
    """Frames of the astronaut whose face moves across, rolls ±25°, turns (squeezed sideways, as a yaw of up to
    ~55° looks), shrinks to ~24 px wide and grows to half the frame's height; with each frame's true face box."""
    from skimage import data

    width, height = size
    astronaut = data.astronaut()
    backdrop = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE
    centre = np.array([(fx0 + fx1) / 2, (fy0 + fy1) / 2])
    images, boxes = [], []
    for i in range(frames):
        t = i / max(1, frames - 1)
        # face width: 96 → 24 (t = 0.35) → height / 2 (t = 0.8) → 120
        face = float(np.interp(t, [0.0, 0.35, 0.8, 1.0], [96, 24, height / 2, 120]))
        scale = face / (fx1 - fx0)
        roll = np.deg2rad(25 * np.sin(2 * np.pi * t))
        squeeze = float(np.interp(t, [0.0, 0.15, 0.3, 0.55, 0.7, 1.0], [1.0, 0.6, 1.0, 1.0, 0.6, 1.0]))
        cx = width * (0.3 + 0.4 * np.sin(np.pi * t))
        cy = height * float(np.interp(t, [0.0, 0.5, 1.0], [0.35, 0.5, 0.45]))
        a = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]]) @ np.diag([squeeze, 1.0]) * scale
        matrix = np.hstack([a, (np.array([cx, cy]) - a @ centre)[:, None]])
        person = cv2.warpAffine(astronaut, matrix, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        inside = cv2.warpAffine(np.full(astronaut.shape[:2], 255, np.uint8), matrix, size) > 127
        image = backdrop.copy()
        image[inside] = person[inside]
        corners = np.array([[fx0, fy0], [fx1, fy0], [fx0, fy1], [fx1, fy1]]) @ a.T + matrix[:, 2]
        boxes.append((*corners.min(0), *corners.max(0)))
        images.append(image)
    return images, boxes


def write_clip(path: Path, images: Sequence[np.ndarray], fps: int = 30) -> Path:
    """An H.264 clip of `images` (nearly lossless: the faces stay as detectable as generated)."""
    height, width = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "12"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for image in images:
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode())
    return path


def decoded(path: Path) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, RGB image) of every frame of a video."""
    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


class PlayedFrames(LiveSource):
    """A camera double: `images` played at `fps` on the live clock, frame i stamped at i / fps."""

    def __init__(self, images: Sequence[np.ndarray], fps: int = 30) -> None:
        self.path, self.images = "played frames", list(images)
        self.height, self.width = self.images[0].shape[:2]
        self.fps = Fraction(fps)

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        for index, image in enumerate(self.images):
            if not self._sleep_until(start + index / float(self.fps)):
                return
            yield Frame(index=index, image=image.copy(), pts=round(index / float(self.fps) / LIVE_TIME_BASE),
                        time_base=LIVE_TIME_BASE, captured_at=time.perf_counter())


def detail_left(before: np.ndarray, after: np.ndarray, box: tuple) -> float:
    """The Laplacian variance of `box` in `after` over that in `before`."""
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    var = [float(cv2.Laplacian(cv2.cvtColor(im[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
           for im in (before, after)]
    return var[1] / max(var[0], 1e-6)


class FaceCheck:
    """Both bundled detectors, on the whole frame and on tiles of 1/2 and 1/4 (another tiling than the stage's),
    as an independent judge of whether a frame shows the face at a known box."""

    def __init__(self) -> None:
        self.detectors = [FaceDetector(model, min_confidence=0.3, tile_levels=2) for model in ("short", "full")]

    def score(self, image: np.ndarray, truth: tuple) -> float:
        """The highest score any detector gives a box on the true face (0 when none)."""
        return max([b.score for d in self.detectors for b in d(image) if iou(b, truth) >= SAME_FACE], default=0.0)

    def leaks(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], truths: Sequence[tuple]
              ) -> tuple[int, list[tuple[int, float, float]]]:
        """(frames whose input shows the face, [(frame, score, detail left)] where a detector still finds a face
        on the true box in the output). Detail left: the box's Laplacian variance after / before; near 0 the
        detector fired on a head-shaped blob (a filled box under hair), not on a face shown."""
        shown, leaked = 0, []
        for i, (before, after, truth) in enumerate(zip(inputs, outputs, truths)):
            if self.score(before, truth) >= FOUND:
                shown += 1
                score = self.score(after, truth)
                if score >= FOUND:
                    leaked.append((i, round(score, 2), round(detail_left(before, after, truth), 3)))
        return shown, leaked

    def close(self) -> None:
        for detector in self.detectors:
            detector.close()
