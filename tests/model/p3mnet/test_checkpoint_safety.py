"""Hostile checkpoints: a FIFO, a zip bomb, weights of the wrong dtype or with NaN. Each is refused with one
line before it can block, fill memory or give a matte of nonsense."""
from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from model.p3mnet.checkpoint import load_official, load_p3mnet, official_state_dict
from model.p3mnet.network import P3MNet
from model.p3mnet.safety import MAX_CHECKPOINT_BYTES, CheckpointError


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A random-weight R34 state_dict in the official format (copies: a test may spoil one tensor)."""
    torch.manual_seed(0)
    return {k: v.clone() for k, v in official_state_dict(P3MNet()).items()}


@pytest.fixture(scope="module")
def net() -> P3MNet:
    return P3MNet()


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_p3mnet(fifo)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            outcome.append(e)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():                       # blocked in open(): a writer releases it, then the test fails
        os.close(os.open(fifo, os.O_WRONLY))
        worker.join(timeout=10)
        pytest.fail("loading a FIFO blocked")
    assert isinstance(outcome[0], CheckpointError)
    assert "FIFO" in outcome[0].message and "not a regular file" in outcome[0].message


def _zip_bomb(path: Path, inflated: int) -> Path:
    """A torch checkpoint whose one tensor member deflates from a few MB to `inflated` bytes of zeros."""
    small = path.with_suffix(".small")
    torch.save({"state_dict": {"resnet.conv1.weight": torch.zeros(4)}}, small)
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                with out.open(info.filename, "w", force_zip64=True) as member:
                    for _ in range(inflated // 2**24):
                        member.write(bytes(2**24))
            else:
                out.writestr(info.filename, src.read(info))
    return path


def test_a_zip_bomb_is_refused_before_torch_inflates_it(tmp_path: Path):
    bomb = _zip_bomb(tmp_path / "bomb.pth", MAX_CHECKPOINT_BYTES + 2**26)
    assert bomb.stat().st_size < 8e6          # a few MB on disk
    with pytest.raises(CheckpointError, match=r"unpacks to \d+ MB .*over the 537 MB limit.*refused before reading"):
        load_p3mnet(bomb)


def test_too_many_archive_members_are_refused(tmp_path: Path):
    path = tmp_path / "many.pth"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(20_001):
            archive.writestr(f"a/data/{i}", b"")
    with pytest.raises(CheckpointError, match="20001 archive members"):
        load_p3mnet(path)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.bool, torch.complex64])
def test_weights_of_a_non_float_dtype_are_refused(state, net, dtype):
    spoilt = dict(state)
    spoilt["decoder_final_l.weight"] = torch.ones_like(state["decoder_final_l.weight"], dtype=dtype)
    with pytest.raises(CheckpointError, match=rf"wrong dtype \(e\.g\. decoder_final_l\.weight is {str(dtype)[6:]}"):
        load_official(net, spoilt)


def test_half_precision_weights_still_load(state, net):
    load_official(net, {k: v.half() if v.is_floating_point() else v for k, v in state.items()})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(state, net, value):
    key = next(k for k in state if k.startswith("tfi_3") and k.endswith("weight"))
    spoilt = {**state, key: state[key].clone()}
    spoilt[key].view(-1)[7] = value
    with pytest.raises(CheckpointError, match=rf"1 tensor\(s\) hold NaN or infinite values \(e\.g\. {key}\)"):
        load_official(net, spoilt)


def test_a_float_where_the_network_has_integers_is_refused(state, net):
    spoilt = dict(state)
    counter = next(k for k in state if k.startswith("decoder") and k.endswith("num_batches_tracked"))
    spoilt[counter] = state[counter].float()
    with pytest.raises(CheckpointError, match="wrong dtype"):
        load_official(net, spoilt)
