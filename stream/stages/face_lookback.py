"""Look-back: a face first found at frame N is also hidden in the frames just before it (offline only).

A face can be in frames the detectors missed: it came in small, turned, or the spread-out sweep had not reached
its corner yet. `LookBack` holds the last `depth` frames before they leave; when a face is found for the first
time, it is looked for again backwards through them, in the square around where it was last seen (the face
then fills the detector's view), and hidden where found; `margin` more frames are hidden where it was last
found, in case it was there but unfound. Holding frames delays them by `depth`: live pipelines cannot afford
it (`depth` frames of latency), offline ones always can.
"""
from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field

from model.faces import Box, FaceBox, clip, pad
from stream.frames import Frame
from stream.stages.face_tracking import LIFT, PADDING, Finder, Track

Region = tuple[int, tuple[int, int, int, int]]       # (track id, integer box to hide)


@dataclass
class Held:
    """A frame waiting to leave, with the boxes to hide in it so far."""

    frame: Frame
    regions: list[Region] = field(default_factory=list)


class LookBack:
    """The last `depth` frames, each with its regions; `push` returns the frames that leave (oldest first)."""

    def __init__(self, finder: Finder, depth: int, margin: int = 2) -> None:
        self.finder, self.depth, self.margin = finder, depth, margin
        self.held: collections.deque[Held] = collections.deque()

    def push(self, frame: Frame, regions: list[Region], born: Sequence[Track]) -> list[Held]:
        """Hold `frame` with its `regions`; trace each newly `born` face back through the held frames."""
        for track in born:
            self._trace(track)
        self.held.append(Held(frame, list(regions)))
        leaving = []
        while len(self.held) > self.depth:
            leaving.append(self.held.popleft())
        return leaving

    def drain(self) -> list[Held]:
        """Every held frame (the end of the stream)."""
        leaving = list(self.held)
        self.held.clear()
        return leaving

    def _trace(self, track: Track) -> None:
        box: Box = track.box
        misses = 0
        for held in reversed(self.held):
            image = held.frame.image
            size = (image.shape[1], image.shape[0])
            face: FaceBox | None = self.finder.refind(image, box)
            if face is not None:
                box, misses = face, 0
            else:
                misses += 1
                if misses > self.margin:
                    return
            hidden = clip(pad(box, PADDING + 0.05 * misses, lift=LIFT), size)
            if hidden is not None:
                held.regions.append((track.id, hidden))
