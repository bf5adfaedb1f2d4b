"""P3M-Net R34: parity with the official network, output layout and fusion, input checks."""

import numpy as np
import pytest
import torch

from model import P3MNet, P3MOutput
from model.p3mnet.checkpoint import load_official
from model.p3mnet.network import fuse


@pytest.fixture(scope="module")
def random_net() -> P3MNet:
    torch.manual_seed(0)
    net = P3MNet().eval()
    for m in net.modules():  # non-trivial BN statistics, so eval-mode BN is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


@pytest.mark.parametrize("seed", [1, 3])
def test_parity_with_official_network(seed, shared, make_checkpoint):
    net = P3MNet().eval()
    load_official(net, make_checkpoint.make_state_dict(seed=seed), source=f"seed {seed}")
    ref = np.load(shared / "p3m" / "parity" / f"vectors_seed{seed}.npz")
    with torch.inference_mode():
        out = net(torch.from_numpy(ref["input"]))

    logits = out.global_logits.numpy()
    assert np.abs(logits - ref["global_logits"]).max() <= 1e-3 * np.abs(ref["global_logits"]).max()
    assert np.abs(out.local_alpha.numpy() - ref["local_alpha"]).max() <= 1e-4
    top2 = np.sort(ref["global_logits"], axis=1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0] < 1e-4)[:, None]
    fused_diff = np.abs(out.fused_alpha.numpy() - ref["fused_alpha"])
    assert fused_diff[~near_tie].max() <= 1e-4  # equal up to the local alpha's own tolerance
    assert (np.argmax(logits, axis=1) == np.argmax(ref["global_logits"], axis=1))[~near_tie[:, 0]].all()


def test_outputs_layout_and_batch(random_net):
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out = random_net(x)
        first = random_net(x[:1])
    assert isinstance(out, P3MOutput) and len(out) == 6
    assert out._fields[:3] == ("global_logits", "local_alpha", "fused_alpha")
    for name in ("global_logits", "side2_logits", "side1_logits", "side0_logits"):
        assert getattr(out, name).shape == (2, 3, 64, 96), name
    assert out.local_alpha.shape == out.fused_alpha.shape == (2, 1, 64, 96)
    assert 0 < out.local_alpha.min() and out.local_alpha.max() < 1
    for a, b in zip(first, out):
        torch.testing.assert_close(a, b[:1], rtol=1e-4, atol=1e-4)
    assert not torch.equal(out.local_alpha[0], out.local_alpha[1])


def test_fused_alpha_follows_argmax_of_global_logits(random_net):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = random_net(x)
    cls = out.global_logits.argmax(dim=1, keepdim=True)
    expected = torch.where(cls == 2, 1.0, torch.where(cls == 1, out.local_alpha, 0.0))
    assert torch.equal(out.fused_alpha, expected)


def test_fusion_ties_go_to_the_first_class():
    # pixels: tie bg/unknown -> 0, tie unknown/fg -> local, three-way tie -> 0, clear fg -> 1
    logits = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0], [0.0, 2.0, 0.0, 5.0]]).reshape(1, 3, 1, 4)
    local = torch.full((1, 1, 1, 4), 0.25)
    assert fuse(logits, local).flatten().tolist() == [0.0, 0.25, 0.0, 1.0]


@pytest.mark.parametrize("shape", [(1, 3, 100, 96), (1, 3, 64, 70), (1, 3, 0, 64)])
def test_input_size_must_be_a_multiple_of_32(random_net, shape):
    h, w = shape[2:]
    with pytest.raises(ValueError, match=rf"input size {h}×{w} \(H×W\).*multiples of 32"):
        random_net(torch.zeros(shape))


def test_input_must_have_three_channels(random_net):
    with pytest.raises(ValueError, match=r"N×3×H×W tensor, got shape \(1, 4, 64, 64\)"):
        random_net(torch.zeros(1, 4, 64, 64))
