"""`--model p3mnet-r34|p3mnet-vitae-s|p3mnet-swin-t`: the variant the weights hold, and per-variant size rules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model.p3mnet.checkpoint
from model.errors import P3MError
from model.matters.registry import make_matter, matter_names
from model.p3mnet.network import P3MNet


@pytest.fixture
def stand_in_nets(monkeypatch):
    """load_p3mnet gives a random net of the variant named in the file's name (e.g. w_swin-t.pth)."""
    def load(path, device="cpu"):
        torch.manual_seed(0)
        return P3MNet(str(path).rsplit("_", 1)[1].removesuffix(".pth")).to(device).eval()
    monkeypatch.setattr(model.p3mnet.checkpoint, "load_p3mnet", load)


def test_every_variant_has_a_model_name():
    assert {"p3mnet", "p3mnet-r34", "p3mnet-vitae-s", "p3mnet-swin-t"} <= set(matter_names())


@pytest.mark.parametrize("arch,title", [("r34", "R34"), ("vitae-s", "ViTAE-S"), ("swin-t", "Swin-T")])
def test_variant_name_and_any_variant_name_run_those_weights(arch, title, stand_in_nets, tmp_path):
    for name in (f"p3mnet-{arch}", "p3mnet"):
        with make_matter(name, tmp_path / f"w_{arch}.pth", device="cpu") as m:
            assert m.arch == arch and m.describe() == f"P3M-Net {title} on cpu (w_{arch}.pth)"
            if name == "p3mnet":
                alpha = m(np.zeros((64, 96, 3), np.uint8))
                assert alpha.shape == (64, 96) and np.isfinite(alpha).all()


def test_weights_of_another_variant_are_refused(stand_in_nets, tmp_path):
    with pytest.raises(P3MError, match=r"w_swin-t\.pth holds P3M-Net swin-t, not vitae-s") as err:
        make_matter("p3mnet-vitae-s", tmp_path / "w_swin-t.pth", device="cpu")
    assert "--model p3mnet-swin-t" in err.value.hint

