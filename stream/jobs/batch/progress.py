"""The batch's progress: a bar over videos (done / failed / skipped, frames per second over all workers, ETA)
on a terminal, a line per video elsewhere; failures are always reported as they come."""
from __future__ import annotations

import collections
import sys
import time

from tqdm import tqdm

from stream.jobs.batch.report import VideoResult


class BatchProgress:
    """Counts of the videos finished so far, shown as they come (close() when the batch ends)."""

    def __init__(self, total: int, skipped: int, *, quiet: bool = False) -> None:
        self.counts: collections.Counter[str] = collections.Counter(skipped=skipped)
        self.frames = 0
        self.quiet = quiet
        self._start = time.perf_counter()
        self.bar = tqdm(total=total, unit="video", dynamic_ncols=True, disable=True if quiet else None, leave=False,
                        file=sys.stderr)
        self._describe()

    def add(self, result: VideoResult) -> None:
        self.counts[result.status] += 1
        self.frames += result.frames
        if result.status == "failed":
            tqdm.write(f"failed: {result.input}: {result.error}", file=sys.stderr)
        elif self.bar.disable and not self.quiet:
            tqdm.write(f"{result.status}: {result.input} -> {result.output} ({result.frames} frames, "
                       f"{result.seconds:.1f} s)", file=sys.stderr)
        self.bar.update(1)
        self._describe()

    def _describe(self) -> None:
        fps = self.frames / max(time.perf_counter() - self._start, 1e-9)
        c = self.counts
        self.bar.set_postfix_str(f"done {c['done']} failed {c['failed']} skipped {c['skipped']}, {fps:.1f} fps",
                                 refresh=False)

    def close(self) -> None:
        self.bar.close()
