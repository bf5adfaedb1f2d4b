"""How each variant's official state_dict names map to our module names: the one place that knows them.

Rows are (official prefix, our prefix) in the official state_dict order. R34 (SPEC §5): rows after the first
whose "ours" falls inside the encoder are the official aliases of `resnet.*` (same tensors, second name).
ViTAE-S and Swin-T (SPEC §6, VARIANTS.md): the encoders keep the official names, the decoders sit under
`decoder.` with the IJCV stage names.
"""
from __future__ import annotations

Layout = tuple[tuple[str, str], ...]

R34_LAYOUT: Layout = (
    ("resnet.", "encoder."),
    ("encoder0.0.", "encoder.conv1."),
    ("encoder0.1.", "encoder.bn1."),
    ("encoder1.0.", "encoder.layer1."),
    ("encoder2.", "encoder.layer2."),
    ("encoder3.", "encoder.layer3."),
    ("encoder4.", "encoder.layer4."),
    *((f"tfi_{i}.", f"matting_decoder.tfi{i}.") for i in (3, 2, 1, 0)),
    *((f"sbfi_{i}.", f"matting_decoder.sbfi{i}.") for i in (2, 1, 0)),
    *((f"dbfi_{i}.", f"semantic_decoder.dbfi{i}.") for i in (2, 1, 0)),
    *((f"decoder{i}_g.", f"semantic_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    *((f"decoder{i}_l.", f"matting_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    ("decoder_final_l.", "matting_decoder.final."),
)

IJCV_LAYOUT: Layout = (
    ("encoder.", "encoder."),
    *((f"decoder.decoder{i}_g.", f"semantic_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    ("decoder.decoder_final_g.", "semantic_decoder.final."),
    *((f"decoder.decoder{i}_l.", f"matting_decoder.stage{i}.") for i in (4, 3, 2, 1, 0)),
    ("decoder.decoder_final_l.", "matting_decoder.final."),
    *((f"decoder.tfi_{i}.", f"matting_decoder.tfi{i}.") for i in (3, 2, 1, 0)),
    *((f"decoder.sbfi_{i}.", f"matting_decoder.sbfi{i}.") for i in (2, 1, 0)),
    *((f"decoder.dbfi_{i}.", f"semantic_decoder.dbfi{i}.") for i in (2, 1, 0)),
)

# Keys our checkpoints carry that official ones lack: ViTAE-S's Performer features (not in the official
# state_dict; without them the net keeps the ones it derived from a fixed seed).
OPTIONAL_SUFFIX = ".attn.w"


def official_layout(arch: str) -> Layout:
    """The (official prefix, our prefix) rows of variant `arch`."""
    return R34_LAYOUT if arch == "r34" else IJCV_LAYOUT


def is_optional(key: str) -> bool:
    """Whether a checkpoint may leave `key` (an official name) out."""
    return key.endswith(OPTIONAL_SUFFIX)
