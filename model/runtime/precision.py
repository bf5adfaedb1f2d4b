"""P3M-Net's precisions on CUDA (model/runtime/fast_p3mnet.py), the default first; torch-free, so the CLI
and configs read them without loading torch."""
from __future__ import annotations

PRECISIONS: tuple[str, ...] = ("mixed", "fp16", "bf16", "fp32")
