"""The bundled MediaPipe models: where their files are, importing MediaPipe without the plotting and audio
helpers we never call, and holding back what its native code prints on stderr."""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
log = logging.getLogger(__name__)
# glog/absl lines (W0000 00:00:…), their "Logging before InitGoogle" notice, LiteRT's (INFO: [file.cc:12] …)
# and TFLite's
NATIVE_LINE = re.compile(
    r"[IWEF]\d{4} |WARNING: Logging before InitGoogle|[A-Z]+: \[\w+\.cc:\d+\]|INFO: Created TensorFlow")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to stderr inside the block: MediaPipe's own lines go to this module's
    log at debug level (`-v` shows them), anything else written meanwhile (another thread's) back to stderr;
    all of it as it was if the block fails.

    MediaPipe prints "Created TensorFlow Lite XNNPACK delegate" and glog warnings when a model loads, a LiteRT
    alignment warning at its first inference and "DestroyAccelerator" when a detector closes; no environment
    variable silences them (GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL, ABSL_MIN_LOG_LEVEL tried), so the file
    descriptor is redirected. Keep the block to those calls.
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
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        _replay(held.read().decode("utf-8", "replace"))


def _replay(text: str) -> None:
    """MediaPipe's lines in `text` to the log at debug level, the others back to stderr."""
    others = []
    for line in text.splitlines(keepends=True):
        if NATIVE_LINE.match(line):
            log.debug("mediapipe: %s", line.rstrip())
        else:
            others.append(line)
    if others:
        sys.stderr.write("".join(others))
        sys.stderr.flush()


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
