"""The fast inference path: BatchNorm folding, the CPU fallback, the graph wrapper; CUDA parity where a GPU is."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model import P3MNet
from model.p3mnet.checkpoint import load_official
from model.p3mnet.decoders import _last_window_wins
from model.runtime.fast_p3mnet import FastP3MNet, fold_batchnorm, fold_conv_bn
from model.runtime.graphs import GraphedFunction

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def parity(shared, make_checkpoint, one_thread):
    """Seed 1's net, its reference vectors, and our unfolded float32 outputs on the parity input."""
    net = P3MNet().eval()
    load_official(net, make_checkpoint.make_state_dict(seed=1), source="seed 1")
    ref = dict(np.load(shared / "p3m" / "parity" / "vectors_seed1.npz"))
    with torch.inference_mode():
        out = net(torch.from_numpy(ref["input"]))
    return net, ref, out


def _off_ties(ref: dict[str, np.ndarray]) -> np.ndarray:
    top2 = np.sort(ref["global_logits"], axis=1)[:, -2:]
    return ~(top2[:, 1] - top2[:, 0] < 1e-4)[:, None]


# --- BatchNorm folding -------------------------------------------------------------------------------------

def test_folding_keeps_every_output_on_the_parity_input(parity):
    net, ref, unfolded = parity
    folded = copy.deepcopy(net)
    assert fold_batchnorm(folded) == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 74
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        out = folded(torch.from_numpy(ref["input"]))
    for name in ("global_logits", "local_alpha", "fused_alpha"):
        mine, theirs = getattr(out, name), getattr(unfolded, name)
        scale = max(1.0, float(theirs.abs().max()))
        assert float((mine - theirs).abs().max()) <= 1e-4 * scale, name


def test_cpu_fallback_gives_the_reference_alpha(parity):
    net, ref, unfolded = parity
    runner = FastP3MNet(net, "cpu", precision="mixed", compile="max-autotune")    # CUDA-only options: ignored
    assert runner.precision == "fp32" and runner.compile is None and not runner.cuda_graph
    assert "cpu, float32, 74 BN folded, channels_last" in runner.describe()
    alpha = runner(torch.from_numpy(ref["input"]))
    assert alpha.shape == (1, 1, 192, 256) and alpha.dtype == torch.float32
    assert float((alpha - unfolded.fused_alpha).abs().max()) <= 1e-4
    assert np.abs(alpha.numpy() - ref["fused_alpha"])[_off_ties(ref)].max() <= 1e-4
    assert net.encoder.conv1.bias is None and isinstance(net.encoder.bn1, nn.BatchNorm2d)   # the net: untouched


@pytest.mark.parametrize("bias", [True, False])
def test_fold_conv_bn_is_conv_then_bn(bias):
    g = torch.Generator().manual_seed(0)
    conv, bn = nn.Conv2d(4, 6, 3, padding=1, bias=bias), nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(6, generator=g))
        bn.running_var.copy_(torch.rand(6, generator=g) + 0.1)
    x = torch.randn(2, 4, 8, 8, generator=g)
    with torch.no_grad():
        expected = bn(conv(x))
        fold_conv_bn(conv, bn)
        assert conv.bias is not None
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_a_batchnorm_not_after_a_conv_is_refused_and_nothing_changes():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"not right after a Conv2d.*: 3"):
        fold_batchnorm(net)
    assert isinstance(net[1], nn.BatchNorm2d) and net[0].bias is not None


def test_bad_options_are_refused():
    net = P3MNet()
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        FastP3MNet(net, "cpu", precision="fp8")
    with pytest.raises(ValueError, match="unknown compile mode 'fast'"):
        FastP3MNet(net, "cpu", compile="fast")


# --- unpooling where overlapping pool windows picked the same position --------------------------------------

def test_unpool_collisions_resolve_as_contiguous_cpu_on_any_layout():
    g = torch.Generator().manual_seed(0)
    features = torch.relu(torch.randn(2, 8, 32, 48, generator=g))
    pooled, indices = F.max_pool2d(features, 3, stride=2, padding=1, return_indices=True)
    values = torch.randn(pooled.shape, generator=g)
    official = F.max_unpool2d(values, indices, 2, stride=2)          # contiguous CPU: the last window wins
    written = F.max_unpool2d(torch.ones_like(values), indices, 2, stride=2).sum()
    assert written < values.numel()                                   # some windows share a position
    fixed = _last_window_wins(values, indices)
    assert torch.equal(F.max_unpool2d(fixed, indices, 2, stride=2), official)
    cl = _last_window_wins(values.contiguous(memory_format=torch.channels_last),
                           indices.contiguous(memory_format=torch.channels_last))
    assert torch.equal(F.max_unpool2d(cl, indices.contiguous(memory_format=torch.channels_last), 2, stride=2),
                       official)


# --- the graph wrapper -------------------------------------------------------------------------------------------

def test_graphed_function_just_calls_on_the_cpu():
    calls = []
    fn = GraphedFunction(lambda x: calls.append(x.shape) or x * 2)
    assert torch.equal(fn(torch.ones(2)), torch.full((2,), 2.0))
    assert calls == [(2,)] and fn.signatures == []


# --- CUDA (skipped without a GPU; bench/gpu_check.sh runs these on the lent machine) ------------------------------

@cuda
@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize("precision", ["mixed", "fp32"])
def test_cuda_fast_path_within_1_255_of_the_reference(shared, make_checkpoint, seed, precision):
    net = P3MNet().eval()
    load_official(net, make_checkpoint.make_state_dict(seed=seed), source=f"seed {seed}")
    ref = dict(np.load(shared / "p3m" / "parity" / f"vectors_seed{seed}.npz"))
    runner = FastP3MNet(net, "cuda", precision=precision)
    x = torch.from_numpy(ref["input"]).cuda()
    graph = runner(x).cpu().numpy()
    assert np.abs(graph - ref["fused_alpha"]).max() <= 1 / 255
    assert np.abs(graph - runner.forward(x).cpu().numpy()).max() <= 1e-6     # the graph replays the forward


@cuda
def test_cuda_graphs_are_cached_per_shape_and_batch():
    torch.manual_seed(0)
    runner = FastP3MNet(P3MNet().eval(), "cuda", precision="fp32")
    a = torch.randn(1, 3, 64, 96, device="cuda")
    b = torch.randn(2, 3, 64, 96, device="cuda")
    first = runner(a).clone()
    batch = runner(b).clone()                       # a graph's output lasts until the next call: keep a copy
    runner(torch.randn(1, 3, 96, 64, device="cuda"))
    assert torch.equal(runner(a), first)           # replayed, not recaptured: same output for the same input
    assert len(runner._run.signatures) == 3
    torch.testing.assert_close(batch[:1], runner(b[:1]), rtol=0, atol=1e-4)
