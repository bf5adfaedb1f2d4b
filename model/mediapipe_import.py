"""Importing MediaPipe without the helpers we never call.

`import mediapipe` runs every task package's `__init__`: the vision one imports its drawing helpers, which
import matplotlib.pyplot, and the audio one tries sounddevice (PortAudio). That was 0.45 of the 0.6 s the
bundled model took to load, on every `p3m cutout` and `p3m live`. `import_mediapipe` lets small stand-in
modules take their place during the import and removes them from `sys.modules` afterwards. A stand-in that
MediaPipe kept (e.g. `drawing_utils.plt`) imports the real module the first time anything on it is used,
so MediaPipe's plotting still works; it just costs its import then, not at every start.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import Iterator

DEFERRED = ("matplotlib", "matplotlib.pyplot", "sounddevice")


class _StandIn(types.ModuleType):
    """Takes a module's place; any attribute it lacks comes from the real module, imported on first use."""

    def __getattr__(self, attr: str) -> object:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def import_mediapipe() -> types.ModuleType:
    """`import mediapipe` (with its Tasks vision API) without importing matplotlib and sounddevice."""
    with _stand_ins(DEFERRED):
        import mediapipe
        import mediapipe.tasks.python.vision  # noqa: F401 - the Tasks API the matters and detectors use
    return mediapipe


@contextlib.contextmanager
def _stand_ins(names: tuple[str, ...]) -> Iterator[None]:
    """Stand-ins in `sys.modules` for those of `names` not imported yet, for the duration of the block."""
    placed: dict[str, _StandIn] = {}
    for name in names:
        if name not in sys.modules:
            placed[name] = sys.modules[name] = _StandIn(name)
            parent, _, child = name.rpartition(".")
            if parent in placed:            # `import matplotlib.pyplot as plt` reads the parent's attribute
                setattr(placed[parent], child, placed[name])
    try:
        yield
    finally:
        for name, stand_in in placed.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
