"""The three roles in a pipeline: a Source yields frames, a Stage turns a frame into a frame, a Sink writes
them. Jobs, the pipeline and tests depend on these, not on the concrete sources, stages and sinks."""
from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

from stream.frames import Frame


class Stage(Protocol):
    """A step of the pipeline: one frame in, the same (annotated) frame out; `close()` is optional.

    Offline, a stage with `batch_size` > 1 gets up to that many frames at once through
    `process_batch(frames) -> frames`; live pipelines always call `process`. A stage with `flush() -> frames`
    may keep frames in flight: offline, it always gets `process_batch` (even at batch 1), may return fewer
    frames than it got (older ones first, always in order), and gives the rest from `flush()` at the end of
    the stream."""

    def process(self, frame: Frame) -> Frame: ...


class Source:
    """What every source exposes; iterate it (once) for frames, and close it (or use `with`)."""

    path: str                  # the input as given (a file, URL, folder or pattern): audio is copied from it
    width: int
    height: int
    fps: Fraction              # average frame rate, or a sane fallback
    time_base: Fraction        # unit of `Frame.pts`
    frame_count: int | None    # an estimate; None when unknown (live streams)
    has_audio: bool = False
    start_time: float = 0.0    # input seconds cut from the start (--start): frame times and the audio start there
    cut: bool = False          # the frames end before the input does (--duration, --frames): so does the audio

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the input; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink:
    """What every sink offers: `write(frame)`, `frames_written`, `close()` to finalise, `abort()` on error."""

    path: str
    frames_written: int = 0

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self, *, interrupted: bool = False) -> None:
        """Finalise the output and keep it; `interrupted` stops audio at the last frame. Idempotent."""

    def abort(self) -> None:
        """Stop after an error and remove what was written. Idempotent."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(interrupted=True)
        else:
            self.abort()
