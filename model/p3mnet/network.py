"""P3M-Net (SPEC §1-4, §6): encoder → semantic decoder and matting decoder → fusion, in three variants
(IJCV 2023): the ResNet-34-MP, ViTAE-S and Swin-T encoders, each with decoders of its width."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from model.p3mnet.decoders import R34_WIDTHS, DecoderWidths, MattingDecoder, SemanticDecoder
from model.p3mnet.encoder import ResNet34MP

SIZE_MULTIPLE = 32  # five 2× poolings: H and W must divide by 2**5
ARCHS: tuple[str, ...] = ("r34", "vitae-s", "swin-t")
ARCH_TITLES = {"r34": "ResNet-34", "vitae-s": "ViTAE-S", "swin-t": "Swin-T"}


def _vitae() -> nn.Module:
    from model.p3mnet.vitae import ViTAEEncoder

    return ViTAEEncoder()


def _swin() -> nn.Module:
    from model.p3mnet.swin import SwinEncoder

    return SwinEncoder()


# arch -> (encoder factory, decoder widths); ViTAE-S as VARIANTS.md §4, Swin-T ×1.5 wider (§5).
_PARTS: dict[str, tuple[Callable[[], nn.Module], DecoderWidths]] = {
    "r34": (ResNet34MP, R34_WIDTHS),
    "vitae-s": (_vitae, DecoderWidths(e4=512, levels=(256, 128, 64, 64), e0=32, ijcv=True)),
    "swin-t": (_swin, DecoderWidths(e4=768, levels=(384, 192, 96, 96), e0=48, ijcv=True)),
}
# The smallest side each variant's network works at; Swin-T's windows need every stage at least 8 tokens
# wide (VARIANTS.md §5): smaller inputs are padded to it and the outputs cropped back.
MIN_SIDE = {"r34": SIZE_MULTIPLE, "vitae-s": SIZE_MULTIPLE, "swin-t": 8 * SIZE_MULTIPLE}


class P3MOutput(NamedTuple):
    """The network's outputs, in the official 6-tuple order; every map is at the input resolution."""

    global_logits: Tensor  # N×3×H×W raw logits: 0 background, 1 transition, 2 foreground
    local_alpha: Tensor  # N×1×H×W sigmoid of the matting decoder
    fused_alpha: Tensor  # N×1×H×W: 0 / local alpha / 1 where argmax(global_logits) is 0 / 1 / 2
    side2_logits: Tensor  # N×3×H×W from dBFI-2 (deep supervision during training)
    side1_logits: Tensor  # N×3×H×W from dBFI-1
    side0_logits: Tensor  # N×3×H×W from dBFI-0


class P3MNet(nn.Module):
    """P3M-Net of variant `arch` (one of ARCHS). Input: N×3×H×W, ImageNet-normalised, H and W multiples of 32."""

    def __init__(self, arch: str = "r34") -> None:
        super().__init__()
        if arch not in _PARTS:
            raise ValueError(f"unknown P3M-Net variant {arch!r}: use one of {', '.join(ARCHS)}")
        self.arch = arch
        make_encoder, widths = _PARTS[arch]
        self.encoder = make_encoder()
        self.semantic_decoder = SemanticDecoder(widths)
        self.matting_decoder = MattingDecoder(widths)

    @property
    def title(self) -> str:
        """The variant as the paper names it, e.g. "ViTAE-S"."""
        return ARCH_TITLES[self.arch]

    def forward(self, x: Tensor) -> P3MOutput:
        check_input_size(x)
        x, (h, w) = pad_to_min_side(x, MIN_SIDE[self.arch])
        features = self.encoder(x)
        semantic = self.semantic_decoder(features)
        local_alpha = self.matting_decoder(features, semantic)
        fused_alpha = fuse(semantic.logits, local_alpha)
        out = P3MOutput(semantic.logits, local_alpha, fused_alpha, *semantic.side_logits)
        return out if x.shape[-2:] == (h, w) else P3MOutput(*(t[..., :h, :w] for t in out))


def pad_to_min_side(x: Tensor, min_side: int) -> tuple[Tensor, tuple[int, int]]:
    """`x` with its edge pixels repeated at the bottom and right up to `min_side` per side, and its own (h, w)."""
    h, w = x.shape[-2:]
    if h >= min_side and w >= min_side:
        return x, (h, w)
    return F.pad(x, (0, max(0, min_side - w), 0, max(0, min_side - h)), mode="replicate"), (h, w)


def fuse(global_logits: Tensor, local_alpha: Tensor) -> Tensor:
    """0 / local alpha / 1 where the argmax of the logits is background / transition / foreground.

    Ties go to the lower class, as torch.max in the official code."""
    cls = global_logits.argmax(dim=1, keepdim=True)
    return local_alpha * (cls == 1).to(local_alpha.dtype) + (cls == 2).to(local_alpha.dtype)


def check_input_size(x: Tensor) -> None:
    """Raise ValueError unless `x` is N×3×H×W with H and W multiples of 32."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"P3MNet expects an N×3×H×W tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
        fit_h, fit_w = (max(side // SIZE_MULTIPLE, 1) * SIZE_MULTIPLE for side in (h, w))
        raise ValueError(
            f"P3MNet input size {h}×{w} (H×W) is not allowed: H and W must be positive multiples of "
            f"{SIZE_MULTIPLE} (e.g. {fit_h}×{fit_w})"
        )
