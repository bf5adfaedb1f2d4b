"""GPU smoke run of P3M-Net training: N steps of the real train step (loss, AMP, Adam) on synthetic batches.

Usage: python bench/train_gpu_smoke.py [--steps 50] [--size 512] [--batch 8] [--device auto] [--no-amp]
                                       [--json bench/train_gpu_smoke.json]
CPU check: python bench/train_gpu_smoke.py --steps 2 --size 64 --batch 2
Prints a table (step time, images/s, peak GPU memory, losses) and writes JSON with the machine's name.
The batches are made once on the device (the data loader is not timed), so this measures the model step.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

from model.p3mnet.inference import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from model.training.config import TrainConfig  # noqa: E402
from model.training.trainer import Trainer  # noqa: E402


def synthetic_batch(batch: int, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Ellipses (soft edges) composited on noise: image, alpha, trimap classes, fg, bg, as MattingDataset gives."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre = torch.rand(batch, 2, 1, 1, generator=g) * 0.6 - 0.3
    radius = torch.rand(batch, 2, 1, 1, generator=g) * 0.3 + 0.3
    d = ((yy - centre[:, :1]) / radius[:, :1]) ** 2 + ((xx - centre[:, 1:]) / radius[:, 1:]) ** 2
    alpha = torch.sigmoid((1 - d) * 20)  # N×1×H×W
    fg = torch.rand(batch, 3, 1, 1, generator=g).expand(batch, 3, size, size).contiguous()
    bg = torch.rand(batch, 3, size, size, generator=g)
    image01 = alpha * fg + (1 - alpha) * bg
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    trimap = torch.ones_like(alpha, dtype=torch.int64)
    trimap[alpha < 0.01] = 0
    trimap[alpha > 0.99] = 2
    batch_ = {"image": (image01 - mean) / std, "alpha": alpha, "trimap": trimap, "fg": fg, "bg": bg}
    return {k: v.to(device) for k, v in batch_.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3, help="Untimed steps first (cuDNN autotune, allocator).")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    ap.add_argument("--json", default="bench/train_gpu_smoke.json")
    args = ap.parse_args()

    config = TrainConfig(device=args.device, amp=not args.no_amp, out_size=args.size, batch_size=args.batch,
                         lr=1e-4, val_every=0)
    trainer = Trainer(config, progress=False)
    device = trainer.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batches = [synthetic_batch(args.batch, args.size, device, seed) for seed in range(4)]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    warmup = min(args.warmup, max(args.steps - 1, 0))
    losses, times = [], []
    for i in range(args.steps):
        sync()
        t0 = time.perf_counter()
        values = trainer.step(batches[i % len(batches)])
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        losses.append(values["loss"])
    step_s = float(np.median(times)) if times else float("nan")
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    finite = all(math.isfinite(v) for v in losses)

    print(f"{'device':10} {'amp':>5} {'size':>5} {'batch':>5} {'steps':>5} {'s/step':>8} {'img/s':>8} {'peak GiB':>8}")
    print(f"{device.type:10} {str(trainer.amp):>5} {args.size:5d} {args.batch:5d} {args.steps:5d} "
          f"{step_s:8.4f} {args.batch / step_s:8.1f} {peak:8.2f}")
    print(f"{name}; loss first {losses[0]:.4f} last {losses[-1]:.4f}; all finite: {finite}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "machine": socket.gethostname(), "platform": platform.platform(), "cores": os.cpu_count(),
        "device": name, "torch": torch.__version__, "amp": trainer.amp, "size": args.size, "batch": args.batch,
        "steps": args.steps, "warmup": warmup, "median_step_s": step_s, "images_per_s": args.batch / step_s,
        "peak_gib": peak, "losses": losses, "all_finite": finite,
    }, indent=2))
    if not finite:
        sys.exit("non-finite loss")


if __name__ == "__main__":
    main()
