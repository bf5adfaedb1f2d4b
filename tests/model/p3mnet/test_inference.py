"""Whole-image inference (SPEC §7): size rules, the skimage-compatible resize, and end-to-end parity."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import P3MNet, infer_image
from model.p3mnet.checkpoint import load_official
from model.p3mnet.inference import network_size, resize_bilinear

PORTRAIT = "p_015cd10e"


@pytest.fixture(scope="module")
def nets(make_checkpoint) -> dict[int, P3MNet]:
    """One net per parity seed, shared by this module's tests."""
    out = {}
    for seed in (1, 3):
        net = P3MNet().eval()
        load_official(net, make_checkpoint.make_state_dict(seed=seed), source=f"seed {seed}")
        out[seed] = net
    return out


@pytest.fixture(scope="module")
def portrait(shared: Path) -> np.ndarray:
    return np.array(Image.open(shared / "media" / "portraits" / "images" / f"{PORTRAIT}.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def tiny_net() -> P3MNet:
    torch.manual_seed(0)
    return P3MNet().eval()


def _agreement(alpha: np.ndarray, reference_png: Path) -> float:
    """Share of pixels whose saved value trunc(255·alpha) is within ±1 of the reference PNG."""
    ref = np.array(Image.open(reference_png)).astype(np.int16)
    assert alpha.shape == ref.shape and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    mine = (alpha * 255).astype(np.uint8).astype(np.int16)
    return float((np.abs(mine - ref) <= 1).mean())


# --- end-to-end parity with the official strategies --------------------------------------------------


@pytest.mark.parametrize("seed", [1, 3])
def test_resize_strategy_matches_official(seed, nets, portrait, shared):
    alpha = infer_image(nets[seed], portrait, "resize")
    assert _agreement(alpha, shared / "p3m" / "parity" / f"{PORTRAIT}_resize_seed{seed}.png") >= 0.995


def test_hybrid_strategy_matches_official(nets, portrait, shared):
    # The one full-resolution run of the suite (~1056×1600 through the network, tens of seconds on CPU).
    # Seed 3 is the one whose trimap has foreground and background, so the exact 255/0 tests matter.
    alpha = infer_image(nets[3], portrait, "hybrid")
    assert _agreement(alpha, shared / "p3m" / "parity" / f"{PORTRAIT}_hybrid_seed3.png") >= 0.995
    assert (alpha == 1.0).any() and (alpha == 0.0).any()


# --- size rules and input checks -----------------------------------------------------------------


def test_network_size_rules():
    assert network_size(1080, 1620, 0.5) == (512, 800)  # floor32(540), floor32(810)
    assert network_size(1080, 1620, 1.0) == (1056, 1600)
    assert network_size(1081, 1621, 0.5) == (512, 800)  # int(dim/2) first
    assert network_size(4000, 3300, 1.0) == (1600, 1600)  # capped per axis: aspect not kept
    assert network_size(4000, 300, 0.5) == (1600, 128)
    assert network_size(63, 500, 0.5) == (0, 224)


@pytest.mark.parametrize(
    "rgb, match",
    [
        (np.zeros((64, 64, 3), np.float32), r"uint8 RGB image, got dtype float32"),
        (np.zeros((64, 64), np.uint8), r"H×W×3 uint8 RGB image, got shape \(64, 64\)"),
        (np.zeros((64, 64, 4), np.uint8), r"got shape \(64, 64, 4\)"),
        ([[0, 0, 0]], r"numpy array, got list"),
    ],
)
def test_bad_image_is_a_value_error(tiny_net, rgb, match):
    with pytest.raises(ValueError, match=match):
        infer_image(tiny_net, rgb)


@pytest.mark.parametrize("strategy", ["resize", "hybrid"])
def test_too_small_image(tiny_net, strategy):
    with pytest.raises(ValueError, match=r"image 200×60 \(W×H\) is too small.*at least 64×64"):
        infer_image(tiny_net, np.zeros((60, 200, 3), np.uint8), strategy)


def test_unknown_strategy(tiny_net):
    with pytest.raises(ValueError, match=r"unknown strategy 'crop'"):
        infer_image(tiny_net, np.zeros((64, 64, 3), np.uint8), "crop")


def test_small_image_both_strategies(tiny_net):
    rgb = np.random.default_rng(0).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    for strategy in ("resize", "hybrid"):
        alpha = infer_image(tiny_net, rgb, strategy, device="cpu")
        assert alpha.shape == (70, 100) and alpha.dtype == np.float32
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0


# --- the resize, against scikit-image --------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, out_shape",
    [((1080, 1620, 3), (512, 800)), ((512, 800), (1080, 1620)), ((7, 9), (15, 4)), ((1, 7), (3, 20))],
)
@pytest.mark.parametrize("kind", ["uint8", "float32", "trimap"])
def test_resize_is_bit_exact_with_skimage(shape, out_shape, kind):
    """Same numbers as skimage's resize with the 0.14 defaults spelled out (order 1, 'constant', no AA)."""
    resize = pytest.importorskip("skimage.transform").resize
    rng = np.random.default_rng(0)
    if kind == "uint8":
        image = rng.integers(0, 256, shape, dtype=np.uint8)
    elif kind == "float32":
        image = (rng.random(shape, dtype=np.float32) * 0.5 + 0.3).astype(np.float32)
    else:
        image = np.array([0, 128, 255], np.uint8)[rng.integers(0, 3, shape)]
    expected = resize(image, out_shape, order=1, mode="constant", cval=0, clip=True, anti_aliasing=False)
    got = resize_bilinear(image, out_shape)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_resize_semantics_by_hand():
    """2×2 → 4×4: samples at (i + 0.5)/2 − 0.5, outside neighbours count as 0, then clipped to [min, max]."""
    image = np.array([[0.2, 0.6], [1.0, 0.2]], np.float64)
    out = resize_bilinear(image, (4, 4))
    assert out[1, 1] == pytest.approx(0.75 * 0.75 * 0.2 + 0.75 * 0.25 * 0.6 + 0.25 * 0.75 * 1.0 + 0.25 * 0.25 * 0.2)
    assert out[0, 0] == pytest.approx(0.2)  # 0.5625·0.2 plus zeros = 0.1125, clipped up to the minimum
    assert resize_bilinear(np.full((3, 3), 255, np.uint8), (6, 6))[2, 2] == 1.0


def test_product_does_not_import_skimage():
    code = "import model, model.p3mnet.inference, sys; sys.exit('skimage' in sys.modules)"
    root = Path(__file__).resolve().parents[3]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
