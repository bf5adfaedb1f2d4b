"""import_mediapipe: MediaPipe loads without matplotlib and sounddevice, and its plotting still works."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> None:
    """Runs `code` in a fresh interpreter (sys.modules as a user's program starts); fails on its failure."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_mediapipe_loads_without_its_plotting_and_audio_imports():
    _run("""
        import sys
        from model.bundled import import_mediapipe
        mp = import_mediapipe()
        assert mp.Image and mp.tasks.vision.ImageSegmenter     # mediapipe.tasks is its Tasks API package
        skipped = [m for m in ("matplotlib", "matplotlib.pyplot", "sounddevice") if m in sys.modules]
        assert not skipped, skipped
    """)


def test_what_mediapipe_kept_of_matplotlib_becomes_the_real_module_on_use():
    _run("""
        from model.bundled import import_mediapipe
        import_mediapipe()
        from mediapipe.tasks.python.vision import drawing_utils
        figure = drawing_utils.plt.figure            # first use: matplotlib.pyplot is imported now
        import matplotlib.pyplot
        assert figure is matplotlib.pyplot.figure
        assert type(matplotlib.pyplot).__name__ == "module"
    """)


def test_a_matplotlib_imported_before_is_left_alone():
    _run("""
        import matplotlib.pyplot
        from model.bundled import import_mediapipe
        import_mediapipe()
        from mediapipe.tasks.python.vision import drawing_utils
        assert drawing_utils.plt is matplotlib.pyplot
    """)


def test_mediapipes_own_lines_go_to_the_log_at_debug_and_not_to_stderr():
    # The first inference's LiteRT alignment warning and DestroyAccelerator at close are written by C++ to fd 2.
    code = """
        import logging, sys
        import numpy as np
        from model.faces import FaceDetector
        if sys.argv[1:] == ["debug"]:
            logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        with FaceDetector("full") as detector:
            detector(np.zeros((96, 128, 3), np.uint8))
        print("our own line", file=sys.stderr)
    """
    quiet = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "our own line\n", quiet.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-c", textwrap.dedent(code), "debug"], capture_output=True, text=True)
    lines = shown.stderr.splitlines()
    assert any(line.startswith("DEBUG model.bundled: mediapipe: ") and "DestroyAccelerator" in line for line in lines)
    assert any("not aligned" in line for line in lines if line.startswith("DEBUG model.bundled: mediapipe: "))
