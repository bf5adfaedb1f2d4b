"""The fast path with ViTAE-S and Swin-T: the same code path as R34 (BN folded, channels_last; on CUDA graphs
and precisions), checked on the CPU stand-in here and against the parity vectors on a GPU where one is lent."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from model.p3mnet.checkpoint import load_official
from model.p3mnet.network import P3MNet
from model.runtime.fast_p3mnet import FastP3MNet

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
VECTORS = {"vitae-s": "vitae_vectors_seed1.npz", "swin-t": "swin_vectors_seed1_256x288.npz"}


@pytest.fixture(scope="module")
def parity_nets(shared, one_thread):
    """Each variant loaded with the seed-1 parity checkpoint (ViTAE-S with the recorded Performer features)."""
    path = shared / "p3m" / "parity" / "make_checkpoint_transformer.py"
    spec = importlib.util.spec_from_file_location("p3m_make_checkpoint_transformer", path)
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    nets = {}
    for arch, short in (("vitae-s", "vitae"), ("swin-t", "swin")):
        state = make.make_state_dict(1, short)
        ref = dict(np.load(shared / "p3m" / "parity" / VECTORS[arch]))
        if arch == "vitae-s":
            state["encoder.layers.0.NC.0.attn.w"] = torch.from_numpy(ref["performer_w0"])
            state["encoder.layers.0.NC.1.attn.w"] = torch.from_numpy(ref["performer_w1"])
        net = P3MNet(arch).eval()
        load_official(net, state, source=arch)
        nets[arch] = (net, ref)
    return nets


def _off_ties(ref: dict[str, np.ndarray], margin: float) -> np.ndarray:
    top2 = np.sort(ref["global_logits"], axis=1)[:, -2:]
    return ~(top2[:, 1] - top2[:, 0] < margin)[:, None]


@pytest.mark.parametrize("arch", ["vitae-s", "swin-t"])
def test_cpu_fast_path_gives_the_reference_alpha(arch, parity_nets):
    net, ref = parity_nets[arch]
    runner = FastP3MNet(net, "cpu")
    assert runner.folded == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) > 0
    alpha = runner(torch.from_numpy(ref["input"])).numpy()
    assert np.abs(alpha - ref["fused_alpha"])[_off_ties(ref, 1e-4)].max() <= 1e-4


def test_cpu_fast_path_pads_small_swin_inputs_and_crops_back(parity_nets):
    net, _ = parity_nets["swin-t"]
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    alpha = FastP3MNet(net, "cpu")(x)
    with torch.inference_mode():
        plain = net(x).fused_alpha
    assert alpha.shape == (1, 1, 96, 128)
    assert float((alpha - plain).abs().max()) <= 1e-4


@cuda
@pytest.mark.parametrize("arch", ["vitae-s", "swin-t"])
@pytest.mark.parametrize("precision", ["mixed", "fp16", "fp32"])
def test_cuda_fast_path_by_the_fp16_rule(arch, precision, parity_nets):
    # ../shared/README.md: the fused alpha where the float32 top-two logits are not near a tie (0.05·max|logit|).
    net, ref = parity_nets[arch]
    runner = FastP3MNet(net, "cuda", precision=precision)
    x = torch.from_numpy(ref["input"]).cuda()
    alpha = runner(x).cpu().numpy()
    margin = 0.05 * float(np.abs(ref["global_logits"]).max())
    assert np.abs(alpha - ref["fused_alpha"])[_off_ties(ref, margin)].max() <= 2e-3
    assert np.abs(alpha - runner.forward(x).cpu().numpy()).max() <= 1e-6     # the graph replays the forward
