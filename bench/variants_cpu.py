"""CPU forward time of each P3M-Net variant (R34, ViTAE-S, Swin-T) at one size, rounds interleaved.

    PYTHONPATH=. python bench/variants_cpu.py [--size 512x288] [--rounds 5] [--threads 2]

Random weights (speed does not depend on them), float32, inference mode, channels_last as P3MNetMatter runs
on the CPU. Each round times one forward of every variant back to back, so a busy host slows all alike;
prints each variant's per-round ms, the median and its ratio to R34. Figures go to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from model.p3mnet.network import ARCHS, P3MNet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512x288", help="W×H of the network input (multiples of 32)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = {arch: P3MNet(arch).eval().to(memory_format=torch.channels_last) for arch in ARCHS}
    x = torch.randn(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {arch: [] for arch in ARCHS}
    with torch.inference_mode():
        for net in nets.values():        # warm-up: first-call allocations and kernel choices
            net(x)
        for _ in range(args.rounds):
            for arch, net in nets.items():
                start = time.perf_counter()
                net(x)
                times[arch].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["r34"])
    print(f"P3M-Net CPU forward, {w}x{h}, {args.threads} threads, {args.rounds} rounds (ms)")
    for arch, ms in times.items():
        med = statistics.median(ms)
        print(f"{arch:8s} " + " ".join(f"{t:7.0f}" for t in ms) + f"   median {med:7.0f}   x{med / base:.2f}")


if __name__ == "__main__":
    main()
