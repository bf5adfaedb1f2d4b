"""The bundled MediaPipe models: where their files are, importing MediaPipe without the plotting and audio
helpers we never call, and holding back what its native code prints on stderr."""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to stderr inside the block; replay it only if the block fails.

    MediaPipe prints "Created TensorFlow Lite XNNPACK delegate" and a glog warning each time a model loads;
    users should see our one-line messages, not those. Python-level writes are held back too, so keep the
    block to the model's creation.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# `import mediapipe` runs every task package's `__init__`: vision's imports matplotlib.pyplot for its drawing
# helpers, audio's tries sounddevice (PortAudio). Stand-ins take their place during the import; one that
# MediaPipe kept imports the real module the first time it is used, so its plotting still works.
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
