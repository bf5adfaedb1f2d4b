"""Per-variant --infer-size rules: P3M-Net Swin-T needs a long side of at least 256."""
from __future__ import annotations

import pytest

import model.p3mnet.checkpoint
from model.errors import P3MError
from model.matters.registry import make_matter
from model.p3mnet.network import P3MNet
from stream.stages.matting import MattingStage


@pytest.fixture
def stand_in_nets(monkeypatch):
    """load_p3mnet gives a random net of the variant named in the file's name (e.g. w_swin-t.pth)."""
    def load(path, device="cpu"):
        return P3MNet(str(path).rsplit("_", 1)[1].removesuffix(".pth")).to(device).eval()
    monkeypatch.setattr(model.p3mnet.checkpoint, "load_p3mnet", load)


def test_swin_needs_an_infer_size_of_at_least_256(stand_in_nets, tmp_path):
    with make_matter("p3mnet-swin-t", tmp_path / "w_swin-t.pth", device="cpu") as m:
        with pytest.raises(P3MError, match=r"infer_size 192 is too small for P3M-Net Swin-T .* at least 256"):
            MattingStage(m, infer_size=192, owns_matter=False)
        assert MattingStage(m, infer_size=256, owns_matter=False).infer_shape(1080, 1920) == (160, 256)
    with make_matter("p3mnet-vitae-s", tmp_path / "w_vitae-s.pth", device="cpu") as m:
        MattingStage(m, infer_size=192, owns_matter=False)         # ViTAE-S: any multiple of 32
