"""Which regions of a matte are the subject: a matte's regions (its connected soft parts) and the choice of the
main one, for a still image here and, over frames, in stream/stages/subjects.py. Torch-free and cheap: it runs
on the model-resolution alpha."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.errors import P3MError

SUBJECT_MODES = ("main", "all")
# A region reaches as far as its alpha stays above this: its soft edge belongs to it, and two parts joined by
# a half-sure bridge (an arm, hair) are one region.
REACH = 0.1
FRINGE = 4      # pixels around a dropped region whose faint alpha (below REACH) goes with it


@dataclass(frozen=True)
class Regions:
    """The 8-connected regions of alpha > REACH: `labels` (H×W int32, 0 outside every region, 1..count),
    `area` and `box` (x, y, w, h) per label (index 0: the rest)."""

    labels: np.ndarray
    count: int
    area: np.ndarray
    box: np.ndarray

    def overlapping(self, mask: np.ndarray, step: int = 1) -> np.ndarray:
        """The labels (1..count) that share at least one pixel with the bool mask `mask` (of every `step`-th
        pixel, when `step` > 1)."""
        hits = np.bincount(self.labels[::step, ::step][mask], minlength=self.count + 1)
        return np.flatnonzero(hits[1:]) + 1

    def largest(self, among: np.ndarray | None = None) -> int | None:
        """The label (of `among`, else of all) with the most pixels; None when there is none."""
        among = np.arange(1, self.count + 1) if among is None else np.asarray(among, int)
        return int(among[np.argmax(self.area[among])]) if len(among) else None

    def mask(self, kept: np.ndarray) -> np.ndarray:
        """The bool H×W mask of the regions `kept`."""
        if len(kept) == self.count:
            return self.labels > 0
        lut = np.zeros(self.count + 1, bool)
        lut[np.asarray(kept, int)] = True
        return lut[self.labels]

    def keep(self, alpha: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """`alpha` with every region not in `kept` (labels) set to 0 with its faint fringe (a new array when any
        is dropped)."""
        dropped = np.setdiff1d(np.arange(1, self.count + 1), kept)
        if not len(dropped):
            return alpha
        out = alpha.copy()
        for label in dropped:               # within each dropped region's box: cheap for the small ones
            x, y, w, h = self.box[label]
            x, y, w, h = max(0, x - FRINGE), max(0, y - FRINGE), w + 2 * FRINGE, h + 2 * FRINGE
            labels = self.labels[y:y + h, x:x + w]
            out[y:y + h, x:x + w][(labels == label) | (labels == 0)] = 0.0     # its faint fringe too
        return out


def find_regions(alpha: np.ndarray) -> Regions:
    """The regions of an H×W float alpha in [0, 1]."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > REACH).astype(np.uint8), connectivity=8,
                                                                ltype=cv2.CV_32S)
    return Regions(labels, count - 1, stats[:, cv2.CC_STAT_AREA], stats[:, :4])


def check_mode(mode: str) -> str:
    """`mode` if it is one of SUBJECT_MODES, else a P3MError naming the choices."""
    if mode not in SUBJECT_MODES:
        raise P3MError(f"unknown subjects mode {mode!r}",
                       "use main (the person the matte is about) or all (every region the model found)")
    return mode


def select_subjects(alpha: np.ndarray, mode: str = "main") -> np.ndarray:
    """A still's matte with only its subject: `main` keeps the largest region (regions not connected to it,
    such as a ledge or a statue beside the person, go), `all` keeps everything."""
    if check_mode(mode) == "all":
        return alpha
    regions = find_regions(alpha)
    if regions.count <= 1:
        return alpha
    return regions.keep(alpha, np.array([regions.largest()]))
