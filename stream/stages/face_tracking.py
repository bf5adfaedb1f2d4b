"""Faces over time: which detector calls each frame gets, and which face boxes it must hide.

A full sweep of a frame (every square at every size, both detectors) costs several frames' budget, so
`FaceTracks` spreads it: the first frame is swept whole (nothing leaves before one full check), then each frame
gets `sweep_per_frame` of the sweep's calls in turn, plus one call around each face already known (the face
then fills the detector's view whatever its size, so a face that shrinks, turns or moves stays found). A face
not found again keeps its box, moved by its own speed and grown a little each frame, for `hold` frames.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from model.faces import Box, FaceBox, Job, clip, iou, pad

Corners = tuple[float, float, float, float]
PADDING = 0.35       # of a face box, each side (≥ 0.25: model/faces.py's strength holds from there)
LIFT = 0.15          # of the lower padding moved to the top: detector boxes stop at the brows


class Finder(Protocol):
    """What the tracks need of `model.faces.FaceFinder` (a scripted double in tests)."""

    def plan(self, size: tuple[int, int]) -> list[Job]: ...
    def find(self, rgb: np.ndarray, jobs: Sequence[Job]) -> list[FaceBox]: ...
    def scan(self, rgb: np.ndarray) -> list[FaceBox]: ...
    def refind(self, rgb: np.ndarray, box: Box, missed: int = 0) -> FaceBox | None: ...


@dataclass
class Track:
    """One face followed over frames; `box` is the detector's (unpadded) box, or the predicted one when missed."""

    id: int
    box: Corners
    born: int                                       # frame index of the first detection
    at: int                                         # frame index `box` belongs to
    velocity: Corners = (0.0, 0.0, 0.0, 0.0)        # px per frame, per corner (smoothed)
    missed: int = 0                                 # frames since the last detection

    def predict(self, index: int) -> Corners:
        """Where the face is expected at frame `index`: moved on by its velocity."""
        dt = index - self.at
        x0, y0, x1, y1 = (c + v * dt for c, v in zip(self.box, self.velocity))
        return x0, y0, x1, y1

    def region(self) -> Corners:
        """The box to hide: padded, and grown by a twentieth per frame missed (the face may have moved)."""
        return pad(self.box, PADDING + 0.05 * self.missed, lift=LIFT)


class FaceTracks:
    """Per frame: the faces to hide (`update`), from a spread-out sweep and a call around each known face.

    `sweep_per_frame`: sweep calls per frame after the first (a whole sweep then takes len(plan)/that frames);
    `hold`: frames a face stays hidden after its last detection; `light_misses` (live): a face missed is looked
    for by one detector a frame, in turn (its box stays hidden meanwhile; a false face held costs half).
    """

    def __init__(self, finder: Finder, *, sweep_per_frame: int = 1, hold: int = 15, light_misses: bool = False
                 ) -> None:
        self.finder, self.sweep_per_frame, self.hold = finder, sweep_per_frame, hold
        self.light_misses = light_misses
        self.tracks: list[Track] = []
        self._ids = itertools.count()
        self._next_job = 0
        self._last: int | None = None

    def update(self, rgb: np.ndarray, index: int) -> tuple[list[Track], list[Track]]:
        """This frame's tracks (every face to hide now) and those of them born in it (new faces)."""
        size = (rgb.shape[1], rgb.shape[0])
        found: list[tuple[Track, FaceBox]] = []
        if self._last is None or index <= self._last:       # the first frame (or a restart): a whole sweep
            self.tracks.clear()
            fresh = list(self.finder.scan(rgb))
        else:
            for track in self.tracks:
                box = self.finder.refind(rgb, track.predict(index), track.missed if self.light_misses else 0)
                if box is not None:
                    found.append((track, box))
            fresh = list(self.finder.find(rgb, self._sweep_jobs(size)))
        self._last = index
        matched = {id(t) for t, _ in found}
        for box in fresh:                                    # a sweep's face: a known one, or a new one
            known = [t for t in self.tracks if iou(t.predict(index), box) >= 0.2 or any(
                iou(b, box) >= 0.2 for u, b in found if u is t)]
            if not known:
                born = Track(next(self._ids), tuple(float(v) for v in box[:4]), born=index, at=index)
                self.tracks.append(born)
                found.append((born, box))
                matched.add(id(born))
            elif not matched & {id(t) for t in known}:
                found.append((known[0], box))
                matched.add(id(known[0]))
        for track, box in found:
            self._seen(track, box, index)
        for track in self.tracks:
            if id(track) not in matched:
                track.box, track.at = track.predict(index), index
                track.missed += 1
        self.tracks = _distinct([t for t in self.tracks if t.missed <= self.hold])
        return list(self.tracks), [t for t in self.tracks if t.born == index and t.missed == 0]

    def _sweep_jobs(self, size: tuple[int, int]) -> list[Job]:
        plan = self.finder.plan(size)
        jobs = [plan[(self._next_job + k) % len(plan)] for k in range(min(self.sweep_per_frame, len(plan)))]
        self._next_job = (self._next_job + len(jobs)) % max(1, len(plan))
        return jobs

    def _seen(self, track: Track, box: FaceBox, index: int) -> None:
        new: Corners = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        if track.at != index:
            dt = index - track.at
            track.velocity = tuple(0.5 * v + 0.5 * (n - o) / dt                   # type: ignore[assignment]
                                   for v, n, o in zip(track.velocity, new, track.box))
        track.box, track.at, track.missed = new, index, 0


def regions(tracks: Sequence[Track], size: tuple[int, int]) -> list[tuple[int, tuple[int, int, int, int]]]:
    """(track id, integer box to hide, clipped to `size`) for each track inside the frame."""
    out = []
    for track in tracks:
        box = clip(track.region(), size)
        if box is not None:
            out.append((track.id, box))
    return out


def _distinct(tracks: list[Track]) -> list[Track]:
    """One track per face: of two that cover the same face, the older (its look-back already ran)."""
    kept: list[Track] = []
    for track in sorted(tracks, key=lambda t: (t.missed, t.born)):
        if all(iou(track.box, k.box) < 0.5 for k in kept):
            kept.append(track)
    return kept
