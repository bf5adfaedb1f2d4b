"""Training: the config, a real loss decrease on CPU, official checkpoints, resume, encoder init, evaluation."""
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from helpers.training_data import write_synthetic_set

from model.cli import train_command
from model.errors import P3MError
from model.p3mnet.checkpoint import CheckpointError, load_p3mnet, official_state_dict
from model.p3mnet.network import P3MNet
from model.training.config import TrainConfig, TrainConfigError, load_train_config
from model.training.trainer import Trainer, evaluate_weights, load_imagenet_encoder, sidecar_path

TINY = dict(out_size=64, crop_sizes=[64, 80, 96], trimap_kernel=[3, 6], workers=0, device="cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ (12 synthetic 96×96 images) and a P3M-500-P-like val/ (3 of them, with trimaps)."""
    root = tmp_path_factory.mktemp("data")
    train = write_synthetic_set(root, count=12, size=96)
    val = root / "val"
    for sub, src in (("blurred_image", "blurred_image"), ("mask", "mask"), ("trimap", "mask")):
        (val / sub).mkdir(parents=True)
        for p in sorted((train / src).iterdir())[:3]:
            shutil.copy(p, val / sub / p.name)
    return root


@pytest.fixture(scope="module")
def cli_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """`p3m train` with a tiny config: 2 epochs of 2 steps, validation every epoch."""
    out = tmp_path_factory.mktemp("run")
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        **TINY, "train_dir": str(data_root / "train"), "val_dir": str(data_root / "val"), "out_dir": str(out),
        "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "lr": "1e-4", "save_every": 1, "keep_checkpoints": 1,
    }))
    result = CliRunner().invoke(train_command, ["--config", str(config), "-q"], standalone_mode=False)
    assert result.exception is None, result.output
    return out, config, result.return_value


def test_defaults_are_the_official_recipe_and_errors_name_the_field():
    preset = load_train_config("train_p3m10k")
    assert (preset.lr, preset.batch_size, preset.epochs, preset.out_size) == (1e-5, 8, 150, 512)
    assert preset.crop_sizes == (512, 768, 1024) and preset.trimap_kernel == (15, 30)
    assert TrainConfig().lr == 1e-5
    with pytest.raises(TrainConfigError, match="lr: expected float, got 'fast'"):
        load_train_config("train_p3m10k", lr="fast")
    with pytest.raises(TrainConfigError, match="unknown option.*learning_rate"):
        TrainConfig().replace(learning_rate=1.0)
    with pytest.raises(TrainConfigError, match="crop_sizes: expected a list of integers"):
        TrainConfig(crop_sizes="512")
    with pytest.raises(TrainConfigError, match="out_size: 100 is not a multiple of 32"):
        TrainConfig(out_size=100)
    assert TrainConfig(lr="1e-5").lr == 1e-5  # YAML 1.1 reads 1e-5 as text


def test_thirty_steps_lower_the_loss(data_root: Path, tmp_path: Path):
    config = TrainConfig(**TINY, train_dir=str(data_root / "train"), out_dir=str(tmp_path), batch_size=4, lr=5e-4,
                         seed=0, epochs=10)
    trainer = Trainer(config, progress=False)
    losses = [h["loss"] for epoch in range(1, 11) for h in trainer.train_epoch(epoch)]  # 3 steps per epoch
    assert len(losses) == 30 and np.isfinite(losses).all()
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, f"mean loss of the first 5 steps {first:.3f}, of the last 5 {last:.3f}"


def test_cli_checkpoint_is_official_and_reproduces_the_trained_model(cli_run):
    out, _, result = cli_run
    ckpt = out / "ckpt_epoch2.pth"
    assert result.last_checkpoint == ckpt and sidecar_path(ckpt).is_file()
    assert not (out / "ckpt_epoch1.pth").exists()  # keep_checkpoints: 1
    # Strictly the official file: one key, the 713 official names, nothing else.
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert list(raw) == ["state_dict"]
    assert list(raw["state_dict"]) == list(official_state_dict(P3MNet()))
    loaded = load_p3mnet(ckpt)
    trained = result.net.eval()
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(loaded(x), trained(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(r["val"]["images"] == 3 for r in records)
    assert {"loss", "global", "local", "fusion_alpha", "fusion_comp"} <= set(records[0])


def test_resume_continues_from_the_saved_epoch(cli_run):
    out, config, first = cli_run
    ckpt = out / "ckpt_epoch2.pth"
    trainer = Trainer(load_train_config(config, resume=str(ckpt)), progress=False)
    assert (trainer.start_epoch, trainer.steps) == (3, 4)
    saved = load_p3mnet(ckpt).state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in trainer.net.state_dict().items())
    adam_steps = {float(s["step"]) for s in trainer.optimizer.state.values()}
    assert adam_steps == {4.0}

    result = CliRunner().invoke(train_command, ["--config", str(config), "--resume", str(out), "--epochs", "3", "-q"],
                                standalone_mode=False)  # a folder resumes from its newest checkpoint
    assert result.exception is None, result.output
    resumed = result.return_value
    assert (resumed.start_epoch, resumed.end_epoch, resumed.steps) == (3, 3, 6)
    assert (out / "ckpt_epoch3.pth").is_file() and not ckpt.exists()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]


def test_resume_needs_the_training_state(cli_run, tmp_path: Path):
    out, config, _ = cli_run
    plain = tmp_path / "weights.pth"
    shutil.copy(out / "ckpt_epoch3.pth" if (out / "ckpt_epoch3.pth").exists() else out / "ckpt_epoch2.pth", plain)
    with pytest.raises(P3MError, match="no training state"):
        Trainer(load_train_config(config, resume=str(plain)), progress=False)


def test_imagenet_encoder_init(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    source = P3MNet().encoder.state_dict()
    # torchvision's resnet34 names (a sample) are exactly our encoder's.
    for key in ("conv1.weight", "bn1.running_var", "layer1.2.conv2.weight", "layer2.0.downsample.0.weight",
                "layer4.2.bn2.bias", "fc.weight", "fc.bias"):
        assert key in source
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.items() if "num_batches" not in k}
    torch.save(state, tmp_path / "r34mp_pretrained_imagenet.pth.tar")  # a raw ResNet state_dict
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    for name in ("r34mp_pretrained_imagenet.pth.tar", "wrapped.pth"):
        net = P3MNet()
        load_imagenet_encoder(net, tmp_path / name)
        assert all(torch.equal(net.encoder.state_dict()[k], v) for k, v in state.items())
    resnet18ish = {k: v for k, v in state.items() if not k.startswith("layer3.5.")}
    torch.save(resnet18ish, tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="missing.*layer3.5"):
        load_imagenet_encoder(P3MNet(), tmp_path / "r18.pth")

    with caplog.at_level(logging.WARNING, logger="model.training.trainer"):
        Trainer(TrainConfig(**TINY), progress=False)
    assert "random weights" in caplog.text


def test_evaluate_weights_writes_and_scores(cli_run, data_root: Path, tmp_path: Path):
    out, _, _ = cli_run
    ckpt = sorted(out.glob("ckpt_epoch*[0-9].pth"))[-1]
    report = evaluate_weights(ckpt, data_root / "val", "resize", tmp_path / "pred", device="cpu", fast=True)
    assert report.count == 3 and sorted(p.name for p in (tmp_path / "pred").iterdir())[0] == "synthetic_000.png"
    assert {"SAD", "MSE", "MAD", "SAD_TRIMAP"} <= set(report.mean)
    # Images from one folder, ground truth from a plain mask folder.
    plain = evaluate_weights(ckpt, data_root / "val" / "mask", "hybrid", tmp_path / "pred2", device="cpu", fast=True,
                             images=data_root / "val" / "blurred_image")
    assert plain.count == 3 and plain.trimap_dir is None
