"""Quieting native libraries: MediaPipe's TFLite and glog print status lines straight to file descriptor 2."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


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
