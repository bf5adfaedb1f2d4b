"""Face blur, the privacy half of P3M: find faces in the camera frame and hide them in the output (model/faces.py).

`FaceBlur` is a stage placed after compositing: it finds faces on `frame.image` (the camera's picture,
unaffected by the matte) and hides the same boxes in `frame.output` with `model.faces.obscure`. It fails
closed: the first frame is swept whole before it leaves; faces are followed between detections
(`face_tracking.py`); offline, frames wait `lookback` frames so a face found late is hidden before it was found
too (`face_lookback.py`); live, the check can start as the frame enters (`check_ahead`, `face_ahead.py`), and a
detector error covers the whole frame instead of sending it unchecked.
`whose="others"` keeps the main subject's face (the face the matte keeps most of) and hides the rest.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from model.errors import P3MError
from model.faces import DEFAULT_STYLE, FaceFinder, check_face_finder, check_style, obscure
from stream.frames import Frame
from stream.stages.face_ahead import CheckAhead
from stream.stages.face_lookback import Held, LookBack, Region
from stream.stages.face_tracking import FaceTracks, Finder, regions

log = logging.getLogger(__name__)
WHOSE = ("all", "others")
SUBJECT_ALPHA = 0.5       # mean alpha over a face box for it to be the subject's (the matte keeps that person)


class FaceBlur:
    """Hides faces in `frame.output` (`style`: pixelate, gaussian or fill), after compositing.

    `model`: both (default), short or full, the detectors of a `FaceFinder` (or `finder`, which the caller
    closes). `whose`: all, or others (the subject's face kept). `lookback` (offline only): frames held so a face
    is traced back; `sweep_per_frame`: sweep calls per frame (default: live 1; offline as many as let one sweep
    fit in the look-back). `cover_on_error` (live): a frame whose face check fails leaves fully covered.
    Counters: `frames_hidden` (frames that left with a face hidden), `frames_covered`.
    """

    name = "faces"

    def __init__(self, style: str = DEFAULT_STYLE, model: str = "both", *, whose: str = "all", lookback: int = 0,
                 sweep_per_frame: int | None = None, finder: Finder | None = None, hold: int = 15,
                 cover_on_error: bool = False) -> None:
        check_style(style)
        check_face_finder(model)
        if whose not in WHOSE:
            raise P3MError(f"unknown --blur-faces value {whose!r}", "use all, or others (keeps the subject's face)")
        self.style, self.whose, self.cover_on_error = style, whose, cover_on_error
        self._owns_finder = finder is None            # a finder given to us is the caller's to close
        self.finder: Finder = finder or FaceFinder(model)
        # Live, a missed face (often a false one the sweep found) must not cost two calls a frame while held.
        self.tracks = FaceTracks(self.finder, sweep_per_frame=sweep_per_frame or 1, hold=hold,
                                 light_misses=lookback == 0)
        self._auto_sweep = sweep_per_frame is None and lookback > 0
        self.lookback = LookBack(self.finder, lookback) if lookback > 0 else None
        self.frames_hidden = self.frames_covered = 0
        self.ahead: CheckAhead[list[Region] | None] | None = None
        self._subject: int | None = None
        self._warned: set[str] = set()

    def check_ahead(self) -> CheckAhead[list[Region] | None]:
        """Live: the stage to put first, which starts each frame's face check as the frame enters (beside its
        matting and compositing); `process` then waits for that frame's check instead of making it."""
        if self.lookback is not None:
            raise RuntimeError("a FaceBlur with look-back checks the frames it holds itself")
        self.ahead = CheckAhead(self._check)
        return self.ahead

    def process(self, frame: Frame) -> Frame:
        """One frame in, the same frame out, its faces hidden (live, and offline without look-back)."""
        if self.lookback is not None:
            raise RuntimeError("a FaceBlur with look-back holds frames: the pipeline calls process_batch")
        found = self._check(frame) if self.ahead is None else self.ahead.result(frame)
        if found is None:
            self._subject = None
            return self._cover(frame)
        return self._hide(frame, found)

    def _check(self, frame: Frame) -> list[Region] | None:
        """The face boxes to hide in `frame`; None (`cover_on_error`) when the check failed: cover the frame.
        Live with `check_ahead`, this runs on its worker: it alone touches `tracks` then."""
        try:
            tracks, _ = self.tracks.update(frame.image, frame.index)
        except Exception:
            if not self.cover_on_error:
                raise
            self._warn("error", "the face check failed: this frame leaves fully covered", exc_info=True)
            self.tracks = self._new_tracks()      # the next frame is swept whole
            return None
        return regions(tracks, _size(frame))

    def reset(self) -> None:
        """Forget the faces seen so far: the next frame is searched as a first one (a photo after another)."""
        self.tracks = self._new_tracks()
        self._subject = None

    def _new_tracks(self) -> FaceTracks:
        return FaceTracks(self.finder, sweep_per_frame=self.tracks.sweep_per_frame, hold=self.tracks.hold,
                          light_misses=self.tracks.light_misses)

    def process_batch(self, frames: Sequence[Frame]) -> list[Frame]:
        """Offline: frames in, the frames whose look-back is done out (oldest first; fewer while it fills)."""
        if self.lookback is None:
            return [self.process(frame) for frame in frames]
        leaving: list[Held] = []
        for frame in frames:
            if self._auto_sweep:
                self._auto_sweep = False
                self.tracks.sweep_per_frame = -(-len(self.finder.plan(_size(frame))) // max(1, self.lookback.depth - 3))
            tracks, born = self.tracks.update(frame.image, frame.index)
            leaving += self.lookback.push(frame, regions(tracks, _size(frame)), born)
        return [self._hide(held.frame, held.regions) for held in leaving]

    def flush(self) -> list[Frame]:
        """The frames still held at the end of the stream."""
        if self.lookback is None:
            return []
        return [self._hide(held.frame, held.regions) for held in self.lookback.drain()]

    def _hide(self, frame: Frame, found: list[Region]) -> Frame:
        subject = self._subject_of(frame, found)
        boxes = [box for track, box in found if track != subject]
        frame.extras["faces"] = boxes
        if not boxes:
            return frame
        self.frames_hidden += 1
        frame.output = obscure(self._writable_output(frame), boxes, self.style)
        return frame

    def _subject_of(self, frame: Frame, found: list[Region]) -> int | None:
        """The track whose face is the subject's (`whose="others"`): the most alpha over its box, at least half
        of it; the previous subject while it still qualifies. None in `all` mode or when no face qualifies."""
        if self.whose != "others" or not found:
            return None
        if frame.alpha is None:
            self._warn("alpha", "--blur-faces others needs the matte here; hiding every face")
            return None
        alpha = frame.alpha
        mass: dict[int, float] = {}
        for track, (x0, y0, x1, y1) in found:
            mean = float(np.mean(alpha[y0:y1, x0:x1]))
            if mean >= SUBJECT_ALPHA:
                mass[track] = max(mass.get(track, 0.0), mean * (x1 - x0) * (y1 - y0))
        if self._subject not in mass:
            self._subject = max(mass, key=mass.__getitem__) if mass else None
        return self._subject

    def _cover(self, frame: Frame) -> Frame:
        output = self._writable_output(frame)
        output[..., :3] = np.asarray(output[..., :3].mean(axis=(0, 1)), output.dtype)
        frame.output = output
        self.frames_covered += 1
        return frame

    @staticmethod
    def _writable_output(frame: Frame) -> np.ndarray:
        output = frame.output if frame.output is not None else frame.image
        if not output.flags.writeable or np.shares_memory(output, frame.image):
            output = output.copy()        # never write into the camera's image: other stages may still read it
        return output

    def _warn(self, key: str, message: str, **kwargs: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, **kwargs)

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.close()                # its worker uses the finder: it ends first
        close = getattr(self.finder, "close", None)
        if self._owns_finder and close is not None:
            close()


def _size(frame: Frame) -> tuple[int, int]:
    return frame.image.shape[1], frame.image.shape[0]
