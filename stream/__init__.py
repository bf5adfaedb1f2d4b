"""The video pipeline: sources, stages, sinks, the offline cut-out job and the `p3m` command."""
from __future__ import annotations

from typing import Any

__all__ = ["cutout"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import stream.frames` does not load torch and MediaPipe.
    if name == "cutout":
        from stream.jobs.offline import cutout

        return cutout
    raise AttributeError(f"module 'stream' has no attribute {name!r}")
