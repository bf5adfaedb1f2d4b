"""The `p3m` command."""
from __future__ import annotations

import os
import sys

from stream.cli.main import main

__all__ = ["main", "run"]


def run() -> None:
    """The console script: `main`, then, if native code still runs on a helper thread (an FFmpeg open that
    Ctrl-C abandoned, pymatting's import for the compositor), the exit code without finalising the interpreter:
    finalising beside such a thread can crash it."""
    try:
        main()
    except SystemExit as e:
        ffmpeg = sys.modules.get("stream.ffmpeg")       # not imported: nothing was opened
        foreground = sys.modules.get("model.foreground_band")
        if (ffmpeg is not None and ffmpeg.blocked_opens()) or (foreground is not None and foreground.warming_up()):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)
        raise
