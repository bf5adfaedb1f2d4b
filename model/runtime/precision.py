"""P3M-Net's precisions on CUDA (model/runtime/fast_p3mnet.py), the default first; torch-free, so the CLI
and configs read them without loading torch."""
from __future__ import annotations

# P3M-Net's precisions on CUDA (model/fast.py), the default first; here, where the CLI and configs read them
# without loading torch.
PRECISIONS: tuple[str, ...] = ("mixed", "fp16", "bf16", "fp32")
