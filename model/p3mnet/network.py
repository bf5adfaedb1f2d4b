"""P3M-Net with the ResNet-34-MP encoder (SPEC §1-4): encoder → semantic decoder and matting decoder → fusion."""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from model.p3mnet.decoders import MattingDecoder, SemanticDecoder
from model.p3mnet.encoder import ResNet34MP

SIZE_MULTIPLE = 32  # five 2× poolings: H and W must divide by 2**5


class P3MOutput(NamedTuple):
    """The network's outputs, in the official 6-tuple order; every map is at the input resolution."""

    global_logits: Tensor  # N×3×H×W raw logits: 0 background, 1 transition, 2 foreground
    local_alpha: Tensor  # N×1×H×W sigmoid of the matting decoder
    fused_alpha: Tensor  # N×1×H×W: 0 / local alpha / 1 where argmax(global_logits) is 0 / 1 / 2
    side2_logits: Tensor  # N×3×H×W from dBFI-2 (deep supervision during training)
    side1_logits: Tensor  # N×3×H×W from dBFI-1
    side0_logits: Tensor  # N×3×H×W from dBFI-0


class P3MNet(nn.Module):
    """P3M-Net (ResNet-34 variant). Input: N×3×H×W, ImageNet-normalised, H and W multiples of 32."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ResNet34MP()
        self.semantic_decoder = SemanticDecoder()
        self.matting_decoder = MattingDecoder()

    def forward(self, x: Tensor) -> P3MOutput:
        check_input_size(x)
        features = self.encoder(x)
        semantic = self.semantic_decoder(features)
        local_alpha = self.matting_decoder(features, semantic)
        fused_alpha = fuse(semantic.logits, local_alpha)
        return P3MOutput(semantic.logits, local_alpha, fused_alpha, *semantic.side_logits)


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
