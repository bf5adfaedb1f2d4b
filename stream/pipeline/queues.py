"""The two queue policies between pipeline threads: offline queues block (nothing is lost, memory is bounded
by their capacity); live queues hold the newest 1-2 frames and drop the stalest. Both wake every POLL_S to
look at the stop flag, so every wait can be interrupted."""
from __future__ import annotations

import collections
import threading

POLL_S = 0.05            # how often a blocked thread looks at the stop flag: bounds the stop delay


class Cancelled(Exception):
    """Raised inside pipeline threads to unwind after `cancel()` or an error elsewhere."""


END = object()           # end-of-stream sentinel, passed down every queue after the last frame


class BlockingQueue:
    """Offline policy: `put` waits for room, so nothing is dropped and memory stays bounded."""

    def __init__(self, name: str, capacity: int, stop: threading.Event) -> None:
        self.name, self.capacity, self._stop = name, capacity, stop
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.peak = 0       # the most items ever held: proof of the bound

    def put(self, item: object) -> None:
        with self._cond:
            while len(self._items) >= self.capacity:
                self._wait()
            self._append(item)

    def get(self) -> object:
        with self._cond:
            while not self._items:
                self._wait()
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_more(self, n: int) -> list[object]:
        """Up to `n` more items, waiting for each; stops at END, which stays queued for the next `get`."""
        items: list[object] = []
        with self._cond:
            while len(items) < n:
                while not self._items:
                    self._wait()
                if self._items[0] is END:
                    break
                items.append(self._items.popleft())
                self._cond.notify_all()
        return items

    def _append(self, item: object) -> None:
        self._items.append(item)
        if item is not END:
            self.peak = max(self.peak, len(self._items))
        self._cond.notify_all()

    def _wait(self) -> None:
        if self._stop.is_set():
            raise Cancelled
        self._cond.wait(POLL_S)


class LatestQueue(BlockingQueue):
    """Live policy: holds the newest `capacity` (1-2) frames; a put into a full queue drops the stalest."""

    def put(self, item: object) -> None:
        with self._cond:
            if len(self._items) >= self.capacity and item is not END:     # END never pushes out the last frame
                self._items.popleft()          # the stalest frame: nobody wants it any more
                self.dropped += 1
            self._append(item)
