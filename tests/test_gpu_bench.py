"""bench/gpu_bench.py imports and runs here (its --cpu-smoke mode); the GPU numbers come from the lent machine."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"


def test_the_gpu_bench_runs_its_cpu_smoke_and_writes_json(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("OUT", str(tmp_path))
    result = bench.main(["--cpu-smoke", "--skip", "parity,pipeline,live"])
    saved = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert saved["smoke"] and saved["environment"]["machine"]
    assert {r["variant"] for r in saved["forward"]} == {"eager fp32 (PyTorch defaults)", "fast fp32"}
    assert set(saved["environment"]["hw_codecs"]) == {"h264_nvenc", "hevc_nvenc", "h264_cuvid", "nvdec (cuda hwaccel)"}
    assert result["forward"][-1]["batch"] == 2
