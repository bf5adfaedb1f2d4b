"""`p3m` with the test-double matters registered, for runs in a real subprocess (signals, a real stderr)."""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]     # the test helpers, and the repository root

from helpers import robust_doubles  # noqa: E402

from stream.cli import run  # noqa: E402

if __name__ == "__main__":
    robust_doubles.register()
    run()
