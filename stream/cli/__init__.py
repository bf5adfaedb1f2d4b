"""The `p3m` command."""
from __future__ import annotations

import os
import sys

from stream.cli.main import main

__all__ = ["main", "run"]


def run() -> None:
    """The console script: `main`, then, if an FFmpeg open that Ctrl-C abandoned is still blocked in its
    thread, the exit code without finalising the interpreter (finalising beside that thread can crash it)."""
    try:
        main()
    except SystemExit as e:
        ffmpeg = sys.modules.get("stream.ffmpeg")       # not imported: nothing was opened
        if ffmpeg is not None and ffmpeg.blocked_opens():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)
        raise
