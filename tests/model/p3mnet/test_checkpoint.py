"""Checkpoint loading and saving: official format and its variants, strictness, safety, clear errors."""
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model import CheckpointError, P3MNet, load_p3mnet
from model.errors import P3MError
from model.p3mnet.checkpoint import load_official, official_state_dict, save_official

SMALL_INPUT = torch.linspace(-2, 2, 3 * 64 * 96).reshape(1, 3, 64, 96)


@pytest.fixture(scope="module")
def manifest(shared: Path) -> list[dict]:
    return json.loads((shared / "p3m" / "p3mnet_r34_keys.json").read_text())["keys"]


@pytest.fixture(scope="module")
def seed1_state(make_checkpoint) -> dict:
    return make_checkpoint.make_state_dict(seed=1)


@pytest.fixture(scope="module")
def official_pth(seed1_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "p3mnet_seed1.pth"
    torch.save({"state_dict": seed1_state}, path)
    return path


@pytest.fixture(scope="module")
def seed1_net(official_pth) -> P3MNet:
    return load_p3mnet(official_pth)


@pytest.fixture(scope="module")
def seed1_output(seed1_net) -> torch.Tensor:
    with torch.inference_mode():
        return seed1_net(SMALL_INPUT)


def _outputs_equal(net: P3MNet, reference) -> None:
    with torch.inference_mode():
        out = net(SMALL_INPUT)
    for name, a, b in zip(out._fields, out, reference):
        assert torch.equal(a, b), name


# --- the official layout -------------------------------------------------------------------------


def test_our_official_state_dict_is_the_manifest(shared):
    """Same 713 keys, order, shapes and dtypes as the official model, and the same parameter count."""
    manifest = json.loads((shared / "p3m" / "p3mnet_r34_keys.json").read_text())
    net = P3MNet()
    state = official_state_dict(net)
    assert [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()] == [
        (e["key"], e["shape"], e["dtype"]) for e in manifest["keys"]
    ]
    assert sum(p.numel() for p in net.parameters()) == manifest["unique_parameters"] == 39_478_060
    assert state["encoder0.0.weight"] is state["resnet.conv1.weight"]  # aliases are the same tensors


def test_every_manifest_key_loads_strictly(seed1_net, seed1_state, manifest):
    assert not seed1_net.training
    back = official_state_dict(seed1_net)
    assert list(back) == [e["key"] for e in manifest]
    for key, value in seed1_state.items():
        assert torch.equal(back[key], value), key


# --- strictness ----------------------------------------------------------------------------------


def test_one_missing_key_is_named(seed1_state):
    state = dict(seed1_state)
    del state["tfi_2.bn1.running_var"]
    with pytest.raises(CheckpointError, match=r"1 missing key \(tfi_2\.bn1\.running_var\)"):
        load_official(P3MNet(), state)


def test_one_missing_alias_is_named_for_pth(seed1_state, tmp_path):
    state = dict(seed1_state)
    del state["encoder2.0.downsample.0.weight"]
    torch.save({"state_dict": state}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"x\.pth.*1 missing key \(encoder2\.0\.downsample\.0\.weight\)"):
        load_p3mnet(tmp_path / "x.pth")


def test_one_extra_key_is_named(seed1_state):
    state = {**seed1_state, "decoder9_g.0.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"1 unexpected key \(decoder9_g\.0\.weight\)") as err:
        load_official(P3MNet(), state)
    assert "missing" not in str(err.value)


def test_many_mismatches_are_counted_and_listed_briefly(seed1_state):
    state = {k: v for k, v in seed1_state.items() if not k.startswith("decoder4_l.")}
    with pytest.raises(CheckpointError, match=r"21 missing keys \(decoder4_l\.0\.weight, .*, \.\.\. 16 more\)"):
        load_official(P3MNet(), state)


def test_shape_mismatch_is_named(seed1_state):
    state = {**seed1_state, "decoder_final_l.weight": torch.zeros(2, 64, 3, 3)}
    expected = r"1 tensor has the wrong shape \(decoder_final_l\.weight \[2, 64, 3, 3\] != \[1, 64, 3, 3\]\)"
    with pytest.raises(CheckpointError, match=expected):
        load_official(P3MNet(), state)


def test_alias_copies_must_agree(seed1_state):
    state = {**seed1_state, "encoder3.1.bn2.bias": seed1_state["resnet.layer3.1.bn2.bias"] + 1}
    with pytest.raises(CheckpointError, match=r"encoder3\.1\.bn2\.bias differs from resnet\.layer3\.1\.bn2\.bias"):
        load_official(P3MNet(), state)


def test_wrong_architecture_is_named(shared):
    vitae = json.loads((shared / "p3m" / "p3mnet_vitae_s_keys.json").read_text())["keys"]
    state = {e["key"]: torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"])) for e in vitae}
    with pytest.raises(CheckpointError, match=r"not a P3M-Net ResNet-34 checkpoint: none of its 808 keys") as err:
        load_official(P3MNet(), state)
    assert "713 of 713 missing" in str(err.value) and "ViTAE-S checkpoint" in err.value.hint


def test_wrong_architecture_file(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict(), tmp_path / "o.pth")
    with pytest.raises(CheckpointError, match=r"o\.pth: not a P3M-Net checkpoint: none of its 7 keys marks a variant"):
        load_p3mnet(tmp_path / "o.pth")


# --- accepted variants ---------------------------------------------------------------------------


def test_bare_prefixed_and_safetensors_variants_give_identical_outputs(seed1_state, seed1_output, tmp_path):
    torch.save(seed1_state, tmp_path / "bare.pth")
    torch.save({"state_dict": {"module." + k: v for k, v in seed1_state.items()}}, tmp_path / "dp.pth")
    # safetensors cannot hold a shared tensor twice: accept both names (as copies) or just one of them
    save_file({k: v.clone() for k, v in seed1_state.items()}, tmp_path / "both.safetensors")
    only_resnet = {k: v for k, v in seed1_state.items() if not k.startswith("encoder")}
    save_file(only_resnet, tmp_path / "resnet.safetensors")
    only_alias = {k: v for k, v in seed1_state.items() if not k.startswith("resnet.") or "fc." in k}
    save_file({k: v.contiguous() for k, v in only_alias.items()}, tmp_path / "alias.safetensors")
    for name in ("bare.pth", "dp.pth", "both.safetensors", "resnet.safetensors", "alias.safetensors"):
        _outputs_equal(load_p3mnet(tmp_path / name), seed1_output)


def test_safetensors_without_either_alias_name_is_refused(seed1_state, tmp_path):
    gone = ("resnet.layer1.2.conv2.weight", "encoder1.0.2.conv2.weight")  # a tensor under neither name
    state = {k: v for k, v in seed1_state.items() if not k.startswith("encoder") and k not in gone}
    save_file(state, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match=rf"2 missing keys \({re.escape(', '.join(gone))}\)"):
        load_p3mnet(tmp_path / "x.safetensors")


def test_device_argument_and_eval_mode(official_pth):
    net = load_p3mnet(official_pth, device=torch.device("cpu"))
    assert not net.training and next(net.parameters()).device.type == "cpu"


# --- saving ----------------------------------------------------------------------------------------


def test_save_official_round_trip(seed1_net, seed1_state, seed1_output, manifest, tmp_path):
    save_official(seed1_net, tmp_path / "out.pth")
    raw = torch.load(tmp_path / "out.pth", map_location="cpu", weights_only=True)
    assert list(raw) == ["state_dict"]
    saved = raw["state_dict"]
    assert list(saved) == [e["key"] for e in manifest]
    assert saved["encoder4.2.bn1.weight"].data_ptr() == saved["resnet.layer4.2.bn1.weight"].data_ptr()
    for key, value in seed1_state.items():  # including the unused resnet.fc.*
        assert torch.equal(saved[key], value), key
    _outputs_equal(load_p3mnet(tmp_path / "out.pth"), seed1_output)

    save_official(seed1_net, tmp_path / "out.safetensors")
    _outputs_equal(load_p3mnet(tmp_path / "out.safetensors"), seed1_output)


# --- unreadable and unsafe files -----------------------------------------------------------------


class _OpensAFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


class _RunsAShellCommand:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("payload", [_OpensAFile, _RunsAShellCommand])
@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(payload, container, tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    if container == "torch.save":
        torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": payload(target)}, path)
    else:
        path.write_bytes(pickle.dumps({"extra": payload(target)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused: loading it would run pickled code \(\S+\)"):
        load_p3mnet(path)
    assert not target.exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nope\.pth"):
        load_p3mnet(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match=r"checkpoint not found"):
        load_p3mnet(tmp_path / "nope.safetensors")


def test_text_file(tmp_path):
    (tmp_path / "notes.pth").write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a PyTorch checkpoint \(the file holds text\)"):
        load_p3mnet(tmp_path / "notes.pth")


def test_empty_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: the file is empty"):
        load_p3mnet(tmp_path / "empty.pth")


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_truncated_pth(official_pth, tmp_path, zip_format):
    full = tmp_path / "full.pth"
    state = torch.load(official_pth, map_location="cpu", weights_only=True)
    torch.save(state, full, _use_new_zipfile_serialization=zip_format)
    data = full.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth: cannot read the checkpoint, it is truncated or corrupted"):
        load_p3mnet(tmp_path / "cut.pth")


def test_truncated_safetensors(seed1_net, tmp_path):
    save_official(seed1_net, tmp_path / "full.safetensors")
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: cannot read the safetensors file"):
        load_p3mnet(tmp_path / "cut.safetensors")


def test_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"list\.pth: holds a list, not a state_dict"):
        load_p3mnet(tmp_path / "list.pth")


def test_checkpoint_errors_are_one_line_user_errors(tmp_path):
    (tmp_path / "notes.pth").write_text("text")
    with pytest.raises(P3MError) as err:
        load_p3mnet(tmp_path / "notes.pth")
    assert isinstance(err.value, CheckpointError) and err.value.hint
    assert "\n" not in str(err.value)


def test_non_tensor_entries_are_named(seed1_state):
    state = {**seed1_state, "resnet.bn1.num_batches_tracked": 0}
    with pytest.raises(CheckpointError, match=r"1 entry is not a tensor \(resnet\.bn1\.num_batches_tracked\)"):
        load_official(P3MNet(), state)
