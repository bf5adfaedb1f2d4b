"""P3M-Net's fast inference path: BatchNorm folded into the convolutions, channels_last, reduced precision,
and on CUDA the whole forward replayed from one CUDA graph per input shape (model/runtime/graphs.py).
Every variant (R34, ViTAE-S, Swin-T) takes this one path: encoder, semantic decoder, matting decoder, fusion.

Precision (CUDA; the CPU fallback is always float32; measurements in bench/RESULTS.md):

    mixed  the encoder and the semantic decoder (every max-pool decision and the logits the fusion's argmax
           reads) in IEEE float32, the matting decoder in float16. The default: the fused alpha stays within
           1/255 of float32, because reduced precision anywhere before the argmax can flip it.
    fp16   everything in float16: fastest, but a max-pool whose window holds a near-tie can pick another
           position than float32 does, and the matting decoder unpools to it: not within 1/255. TF32
           convolutions behave alike.
    bf16   like fp16 with bfloat16: coarser still (not within 1/255 even in the decoders).
    fp32   everything in IEEE float32 (no TF32).

BatchNorm folding changes no other part of the graph: max-pool indices and unpooling are untouched.
"""
from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor, nn

from model.p3mnet.network import MIN_SIDE, P3MNet, check_input_size, fuse, pad_to_min_side
from model.runtime.graphs import GraphedFunction
from model.runtime.precision import PRECISIONS

log = logging.getLogger(__name__)
Precision = Literal["mixed", "fp16", "bf16", "fp32"]


# "reduce-overhead" and "max-autotune" capture CUDA graphs themselves (cudagraph trees): ours is then off.
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_COMPILE_OWN_GRAPHS = ("reduce-overhead", "max-autotune")
_LOW = {"mixed": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Make `conv` compute bn(conv(x)) (eval-mode statistics), in place; float64 arithmetic, so folding adds
    no error beyond the final rounding. A conv without a bias gets one."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm2d without running statistics")
    with torch.no_grad():
        weight = conv.weight.double()
        scale = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        shift = bn.bias.double() if bn.bias is not None else torch.zeros_like(scale)
        new_bias = (bias - bn.running_mean.double()) * scale + shift
        conv.weight.copy_((weight * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(new_bias.to(conv.bias.dtype))


def fold_batchnorm(net: nn.Module) -> int:
    """Fold every Conv2d → BatchNorm2d pair of `net` into the conv, in place, and put nn.Identity where each
    BN was. Pairs are consecutive children of an nn.Sequential, or children named `convK` and `bnK` (the
    CBR stages, TFI/sBFI/dBFI, the encoder's stem, blocks and shortcuts). Returns the number folded;
    raises ValueError naming any BatchNorm2d that is not right after a conv (nothing is folded then)."""
    pairs: list[tuple[nn.Module, str, nn.Conv2d]] = []     # (parent, BN's name, its conv)
    for parent in net.modules():
        children = dict(parent.named_children())
        if isinstance(parent, nn.Sequential):
            names = list(children)
            for before, name in zip(names, names[1:]):
                if isinstance(children[name], nn.BatchNorm2d) and isinstance(children[before], nn.Conv2d):
                    pairs.append((parent, name, children[before]))
        else:
            for name, child in children.items():
                conv = children.get("conv" + name[2:]) if name.startswith("bn") else None
                if isinstance(child, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d):
                    pairs.append((parent, name, conv))
    paired = {id(getattr(parent, name)) for parent, name, _ in pairs}
    lonely = [name for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in paired]
    if lonely:
        raise ValueError(f"BatchNorm2d not right after a Conv2d, cannot fold: {', '.join(lonely)}")
    for parent, name, conv in pairs:
        fold_conv_bn(conv, getattr(parent, name))
        setattr(parent, name, nn.Identity())
    return len(pairs)


@contextlib.contextmanager
def ieee_fp32_convs() -> Iterator[None]:
    """cuDNN float32 convolutions without TF32 (PyTorch's default rounds their inputs to 10 mantissa bits,
    as coarse as float16 for the max-pool decisions); restored on exit. Process-wide while inside."""
    cudnn = torch.backends.cudnn
    try:
        previous = cudnn.allow_tf32
    except RuntimeError:            # someone set the per-op flags (new API) inconsistently: use it too
        conv = cudnn.conv
        before = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = before
        return
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = previous


class FastP3MNet:
    """P3M-Net's fused alpha on the fast path. Call it with an N×3×H×W ImageNet-normalised float tensor on
    `device` (H, W multiples of 32); it returns the N×1×H×W float32 fused alpha in [0, 1] on `device`.

    CUDA: BN folded, channels_last, `precision` (see the module doc), cudnn.benchmark, and with
    `cuda_graph` one CUDA graph per input shape: the result is then the graph's static output, valid until
    the next call. `compile` (a torch.compile mode) is off by default. CPU: the same folded net in float32,
    channels_last, eager (precision, graphs and compile do not apply there).
    """

    def __init__(self, net: P3MNet, device: str | torch.device = "cuda", *, precision: Precision = "mixed",
                 cuda_graph: bool = True, compile: str | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {compile!r}: use one of {', '.join(COMPILE_MODES)}")
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if not cuda and (precision != "fp32" or compile is not None):
            log.info("P3M-Net fast path on %s: float32, eager (precision %s%s applies on CUDA only)", self.device,
                     precision, f", compile {compile}" if compile else "")
            precision, compile = "fp32", None
        self.precision: str = precision
        self.compile = compile
        self.cuda_graph = cuda and cuda_graph and compile not in _COMPILE_OWN_GRAPHS
        self.net = copy.deepcopy(net).float().eval()
        self.folded = fold_batchnorm(self.net)
        self.low = _LOW[precision]
        self.front = torch.float32 if precision in ("mixed", "fp32") else self.low
        if precision == "mixed":
            self.net.matting_decoder.to(self.low)
        else:
            self.net.to(self.low)
        self.net.to(self.device, memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        if cuda:
            torch.backends.cudnn.benchmark = True      # static shapes: the per-shape search pays off at once
        self._step = torch.compile(self.forward, mode=compile, dynamic=False) if compile else self.forward
        self._run = GraphedFunction(self._step) if self.cuda_graph else self._step

    @property
    def graph_safe(self) -> bool:
        """True when `step` may be captured inside a caller's CUDA graph (CUDA, no compile-owned graphs)."""
        return self.device.type == "cuda" and self.compile not in _COMPILE_OWN_GRAPHS

    def __call__(self, x: Tensor) -> Tensor:
        return self._run(x)

    def step(self, x: Tensor) -> Tensor:
        """One forward without our CUDA graph (compiled when `compile` is set): what a caller that captures
        its own graph around more work (the matting stage's device path) runs inside it."""
        return self._step(x)

    def forward(self, x: Tensor) -> Tensor:
        """The eager forward (no graph): N×3×H×W normalised → N×1×H×W float32 fused alpha in [0, 1]."""
        check_input_size(x)
        x, (h, w) = pad_to_min_side(x, MIN_SIDE[self.net.arch])     # Swin-T under 256 px: cropped back below
        x = x.to(self.device, self.front, memory_format=torch.channels_last)
        with torch.inference_mode(), self._precision_flags():
            f = self.net.encoder(x)
            semantic = self.net.semantic_decoder(f)
            if self.low != self.front:          # mixed: the matting decoder's inputs to its float16
                low = self.low
                f = f._replace(e0=f.e0.to(low), e0p=f.e0p.to(low), e1=f.e1.to(low), e2=f.e2.to(low),
                               e3=f.e3.to(low), e4=f.e4.to(low))
                semantic = semantic._replace(d4=semantic.d4.to(low), d3=semantic.d3.to(low),
                                             d2=semantic.d2.to(low), d1=semantic.d1.to(low))
            local_alpha = self.net.matting_decoder(f, semantic)
            return fuse(semantic.logits.float(), local_alpha.float())[..., :h, :w].clamp_(0.0, 1.0)

    def reset(self) -> None:
        """Drop the captured graphs (frees their memory)."""
        if isinstance(self._run, GraphedFunction):
            self._run.reset()

    def describe(self) -> str:
        """One line: device, precision and what is on."""
        if self.device.type != "cuda":
            return f"{self.device}, float32, {self.folded} BN folded, channels_last, eager"
        parts = [str(self.device), self.precision, f"{self.folded} BN folded", "channels_last",
                 "CUDA graphs" if self.cuda_graph else "no graphs"]
        if self.compile:
            parts.append(f"torch.compile {self.compile}")
        return ", ".join(parts)

    def _precision_flags(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.front == torch.float32:
            return ieee_fp32_convs()
        return contextlib.nullcontext()
