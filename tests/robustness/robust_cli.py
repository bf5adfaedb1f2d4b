"""`p3m` with the test-double matters registered, for runs in a real subprocess (signals, a real stderr)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]     # the doubles, and the repository root

import robust_doubles  # noqa: E402

from stream.cli.main import main  # noqa: E402

if __name__ == "__main__":
    robust_doubles.register()
    main()
