"""Every model the product knows: the three P3M-Net variants, their ImageNet backbones, the bundled MediaPipe
models. Where each comes from, under which licence, and what it is for. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass

from model.errors import P3MError

IJCV_REPO = "github.com/ViTAE-Transformer/P3M-Net"
MM_REPO = "github.com/JizhiziLi/P3M"
BACKBONE_FOLDER = "https://drive.google.com/drive/folders/1sBRVgvFNtkZql1_ti_CxCgZs2O8U4RmW"


@dataclass(frozen=True)
class ModelEntry:
    """One model: `kind` is p3mnet, backbone or bundled; `arch` the P3M-Net variant it is or belongs to."""

    name: str
    kind: str
    arch: str | None
    description: str
    licence: str
    source: str            # where it comes from, for people
    size_mb: float         # float32 weights (P3M-Net, backbones) or the file (bundled)
    drive_id: str | None = None        # the official Google Drive file `download` fetches
    bundled_file: str | None = None    # in model/assets

    @property
    def downloadable(self) -> bool:
        """Whether `p3m models download NAME` has an official file to fetch (else only `--from`)."""
        return self.drive_id is not None


CATALOG: tuple[ModelEntry, ...] = (
    ModelEntry("p3mnet-vitae-s", "p3mnet", "vitae-s", "P3M-Net ViTAE-S trained on P3M-10k (the authors' best)",
               "MIT (P3M-Net IJCV; ViTAE code Clear BSD)", f"{IJCV_REPO} (Google Drive, a .zip around the .pth)", 110,
               drive_id="1QbSjPA_Mxs7rITp_a9OJiPeFRDwxemqK"),
    ModelEntry("p3mnet-r34", "p3mnet", "r34", "P3M-Net ResNet-34 trained on P3M-10k",
               "MIT (P3M-Net)", f"{MM_REPO} (Google Drive)", 158, drive_id="1smX2YQGIpzKbfwDYHAwete00a_YMwoG1"),
    ModelEntry("p3mnet-swin-t", "p3mnet", "swin-t", "P3M-Net Swin-T: no official trained weights; yours, with --from",
               "yours (the network: MIT)", "p3m train --arch swin-t, then --from", 191),
    ModelEntry("imagenet-r34mp", "backbone", "r34", "ImageNet ResNet-34-MP, to train P3M-Net R34",
               "MIT (P3M-Net); trained on ImageNet-1k", f"{MM_REPO} (Google Drive)", 87,
               drive_id="18Pt-klsbkiyonMdGi6dytExQEjzBnHwY"),
    ModelEntry("imagenet-vitae-s", "backbone", "vitae-s", "ImageNet ViTAE-S, to train P3M-Net ViTAE-S",
               "Clear BSD (ViTAE); trained on ImageNet-1k", f"{IJCV_REPO} (a Google Drive folder: --from)", 77),
    ModelEntry("imagenet-swin-t", "backbone", "swin-t", "ImageNet Swin-T, to train P3M-Net Swin-T",
               "MIT (Swin Transformer); trained on ImageNet-1k", f"{IJCV_REPO} (a Google Drive folder: --from)", 116),
    ModelEntry("mediapipe-selfie", "bundled", None, "MediaPipe selfie segmenter, square (the default without P3M-Net)",
               "Apache-2.0", "bundled (mediapipe 0.10.21 wheel)", 0.25, bundled_file="selfie_segmentation.tflite"),
    ModelEntry("mediapipe-selfie-landscape", "bundled", None, "MediaPipe selfie segmenter, landscape",
               "Apache-2.0", "bundled (mediapipe 0.10.21 wheel)", 0.25,
               bundled_file="selfie_segmentation_landscape.tflite"),
    ModelEntry("mediapipe-face-short", "bundled", None, "MediaPipe face detector, short range (--blur-faces)",
               "Apache-2.0", "bundled (mediapipe 0.10.21 wheel)", 0.23,
               bundled_file="face_detection_short_range.tflite"),
    ModelEntry("mediapipe-face-full", "bundled", None, "MediaPipe face detector, full range (--face-model full)",
               "Apache-2.0", "bundled (mediapipe 0.10.21 wheel)", 0.68,
               bundled_file="face_detection_full_range_sparse.tflite"),
)

# Which installed P3M-Net `--model auto` prefers: the authors' best first; Swin-T has only weights users trained.
AUTO_ORDER: tuple[str, ...] = ("p3mnet-vitae-s", "p3mnet-r34", "p3mnet-swin-t")


def entry(name: str) -> ModelEntry:
    """The catalog entry called `name`; P3MError naming the known ones otherwise."""
    for candidate in CATALOG:
        if candidate.name == name:
            return candidate
    raise P3MError(f"unknown model {name!r}", f"`p3m models list` shows them: {', '.join(e.name for e in CATALOG)}")
