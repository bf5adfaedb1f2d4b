"""A fixed, seeded subset of the fuzz run (tests/helpers/fuzz.py; the long run is bench/fuzz.py): mutated
clips through `p3m cutout`, in a worker process under a memory limit with a time limit per case. Every case
must end in a decodable output of the reported frame count, or one clear error line and no output."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
COUNT = 120          # ~10 s here; seed 2 holds the damaged headers that once gave internal errors


def test_mutated_clips_end_in_a_playable_output_or_one_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(HELPERS / "fuzz.py"), "--seed", "2", "--count", str(COUNT),
                           "--folder", str(tmp_path), "--memory-mb", "3000", "--case-seconds", "30"],
                          capture_output=True, text=True, timeout=240)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    verdicts = [r for r in rows if "start" not in r]
    assert proc.returncode == 0 and len(verdicts) == COUNT, (proc.returncode, rows[-1:], proc.stderr[-2000:])
    failed = [v for v in verdicts if not v["ok"]]
    assert not failed, failed
    assert 0 < sum(v["exit_code"] == 0 for v in verdicts) < COUNT        # both outcomes exercised
