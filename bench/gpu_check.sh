#!/usr/bin/env bash
# The GPU session's one command, from the repository root on the lent machine (device tool `run`, with
# carry ["bench/wheels", "bench/shared"] prepared here by bench/fetch_gpu_carry.sh). Installs nothing from
# the network. Runs the CUDA tests, then bench/gpu_bench.py (parity, forward, 1080p pipeline, live latency);
# logs and JSON go to $OUT. About 4-5 minutes. SKIP_TESTS=1 leaves out the CUDA tests (a rerun);
# GPU_BENCH_ARGS adds options to gpu_bench.py (e.g. "--skip parity,forward"); TRAIN=1 adds a 50-step
# training smoke run (~1 minute more).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d)}
if ! python3 -c "import av" 2>/dev/null; then
    if ! ls bench/wheels/av-*.whl >/dev/null 2>&1; then
        echo "PyAV is missing here and bench/wheels holds no av wheel: run bench/fetch_gpu_carry.sh, carry bench/wheels"
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site bench/wheels/*.whl || exit 2
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader || true
python3 -c "import torch, av; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| PyAV', av.__version__)"
# The tests find parity data at ../shared (which does not travel): point it at the carried copy.
if [ ! -d ../shared/p3m/parity ] && [ -d bench/shared/p3m/parity ]; then
    ln -sfn "$PWD/bench/shared" ../shared
fi
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    echo "== CUDA tests (fast path parity, graph cache, device path, codec choice)"
    # 180 s: a fresh host compiles pymatting (numba) on its first import, about a minute
    timeout 180 python3 -m pytest -q -p no:cacheprovider tests/model/runtime/test_fast_p3mnet.py \
        tests/stream/stages/test_device_matting.py tests/stream/test_hwcodecs.py tests/stream/stages/test_batching.py \
        tests/stream/stages/test_device_cutout.py tests/stream/stages/test_foreground.py 2>&1 \
        | tee "$OUT/pytest.log" | tail -30
    timeout 30 python3 -m pytest -q -p no:cacheprovider tests/model/matters/test_matters.py -k cuda 2>&1 | tail -3  # MediaPipe's: CPU
fi
echo "== benchmark"
timeout 260 python3 bench/gpu_bench.py --budget 200 ${GPU_BENCH_ARGS:-} --json "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/gpu_bench.log"
[ "${TRAIN:-0}" = 1 ] || exit 0
echo "== training smoke (issue: PPT training): 50 steps at 512x512, batch 8, mixed precision"
timeout 60 python3 bench/train_gpu_smoke.py --steps 50 --size 512 --batch 8 --json "$OUT/train_smoke.json" 2>&1 \
    | tee "$OUT/train_smoke.log" | tail -5
