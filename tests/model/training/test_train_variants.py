"""Training the transformer variants: `p3m train --arch`, their ImageNet backbones, official checkpoints out."""
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers.training_data import write_synthetic_set

from model.cli import train_command
from model.p3mnet.checkpoint import CheckpointError, load_p3mnet
from model.p3mnet.network import P3MNet
from model.training.backbones import load_transformer_backbone

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_set(tmp_path_factory.mktemp("data"), count=2, size=64)


@pytest.mark.parametrize("arch", ["vitae-s", "swin-t"])
def test_train_arch_writes_a_checkpoint_of_that_variant(arch, train_dir, tmp_path):
    args = ["--arch", arch, "--train-dir", str(train_dir), "--out-dir", str(tmp_path), "--epochs", "1",
            "--steps-per-epoch", "1", "--batch-size", "1", "--workers", "0", "--device", "cpu", "-q",
            "--set", "out_size=64", "--set", "crop_sizes=[64]", "--set", "trimap_kernel=[3,6]",
            "--set", "val_every=0", "--set", "pretrained=null"]
    result = CliRunner().invoke(train_command, args, standalone_mode=False)
    assert result.exception is None, result.output
    trained = result.return_value
    assert trained.net.arch == arch and len(trained.history) == 1
    assert torch.isfinite(torch.tensor(trained.history[0]["loss"]))
    loaded = load_p3mnet(tmp_path / "ckpt_epoch1.pth")
    assert loaded.arch == arch
    ours, theirs = trained.net.state_dict(), loaded.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_vitae_backbone_loads_its_ema_weights(tmp_path):
    source = P3MNet("vitae-s").encoder.state_dict()
    ema = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.items() if not k.endswith(".attn.w")}
    # The official file holds both; the IJCV code reads state_dict_ema.
    torch.save({"state_dict": {k: torch.zeros_like(v) for k, v in ema.items()}, "state_dict_ema": ema},
               tmp_path / "vitae_backbone.pth")
    net = P3MNet("vitae-s")
    w = net.encoder.layers[0].NC[0].attn.w.clone()
    load_transformer_backbone(net, tmp_path / "vitae_backbone.pth", "ViTAE-S")
    loaded = net.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in ema.items() if not k.startswith("head."))
    assert torch.equal(net.encoder.layers[0].NC[0].attn.w, w)     # our fixed-seed features stay


def test_swin_backbone_without_fixed_buffers_and_a_wrong_one_is_named(tmp_path):
    source = P3MNet("swin-t").encoder.state_dict()
    model = {k: v for k, v in source.items() if not k.endswith(("attn_mask", "relative_position_index"))}
    model["head.weight"] = torch.zeros(1000, 768)                  # the classifier: not ours, ignored
    torch.save({"model": model}, tmp_path / "swin.pth")
    load_transformer_backbone(P3MNet("swin-t"), tmp_path / "swin.pth", "Swin-T")
    torch.save({"state_dict_ema": P3MNet("vitae-s").encoder.state_dict()}, tmp_path / "vitae.pth")
    with pytest.raises(CheckpointError, match="not an ImageNet Swin-T backbone: .* missing"):
        load_transformer_backbone(P3MNet("swin-t"), tmp_path / "vitae.pth", "Swin-T")
