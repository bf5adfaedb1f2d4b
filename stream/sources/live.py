"""The live clock every live source keeps (cameras, the synthetic camera).

A live source yields `Frame`s with `captured_at = time.perf_counter()` when the frame became available and
`pts` in milliseconds since the source started (`time_base` 1/1000), so recordings keep wall-clock timing
across dropped frames and reconnects. Indexes are gap-free from 0.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction

from stream.protocols import Source

LIVE_TIME_BASE = Fraction(1, 1000)
SLICE_S = 0.05                    # sleeps are cut into slices this long, to notice a stop request


class LiveSource(Source):
    """A source on the live clock. `should_stop` is polled while it waits (pacing, reconnecting)."""

    time_base = LIVE_TIME_BASE
    frame_count = None
    reconnects = 0                 # how many times the device came back after being lost
    should_stop: Callable[[], bool] = staticmethod(lambda: False)

    def _sleep_until(self, deadline: float) -> bool:
        """Sleep until `deadline` (perf_counter) in slices; False if asked to stop meanwhile."""
        while (left := deadline - time.perf_counter()) > 0:
            if self.should_stop():
                return False
            time.sleep(min(left, SLICE_S))
        return True
