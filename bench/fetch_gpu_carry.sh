#!/usr/bin/env bash
# Run HERE (a machine with network), once, before a GPU session. The lent GPU machine reaches no network and
# has no PyAV, and ../shared does not travel, so this fills two git-ignored folders the device tool carries:
#   bench/wheels/   PyAV, the version installed here, as a manylinux x86-64 wheel for the GPU image's Python
#   bench/shared/   the parity checkpoint maker and vectors (a copy of ../shared/p3m's parity files)
# Then: device tool `run` with carry ["bench/wheels", "bench/shared"] and command `bash bench/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
AV_VERSION=$(python3 -c "import av; print(av.__version__)")
GPU_PYTHON=${GPU_PYTHON:-3.12}          # the 'cuda' image's python3 (KINDS.md)
mkdir -p bench/wheels
python3 -m pip download --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d bench/wheels "av==$AV_VERSION"
SHARED=${SHARED:-../shared}
mkdir -p bench/shared/p3m/parity
cp "$SHARED/p3m/p3mnet_r34_keys.json" bench/shared/p3m/
cp "$SHARED/p3m/parity/make_checkpoint.py" "$SHARED"/p3m/parity/vectors_seed{1,3}.npz bench/shared/p3m/parity/
du -sh bench/wheels bench/shared
