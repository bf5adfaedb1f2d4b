"""Matting metrics (SPEC §8) on cases small enough to compute by hand."""
import numpy as np
import pytest
from skimage.measure import label, regionprops

from model.evaluation import metrics
from model.evaluation.metrics import compute_all, conn, grad, largest_component

# 2×3 case: |p − α| = [[0, .5, 0], [.25, .25, .5]] sums to 1.5; squares sum to .625.
PRED = np.array([[0.0, 0.5, 1.0], [0.25, 0.75, 1.0]])
ALPHA = np.array([[0.0, 1.0, 1.0], [0.0, 0.5, 0.5]])
# Trimap: bg column, unknown column, fg column. Forced prediction p' = [[0, .5, 1], [0, .75, 1]],
# so |p' − α| = [[0, .5, 0], [0, .25, .5]]: sum 1.25, squares .5625, two unknown pixels.
TRIMAP = np.array([[0, 128, 255], [0, 128, 255]], dtype=np.uint8)


def test_whole_image_errors_by_hand() -> None:
    assert metrics.sad(PRED, ALPHA) == pytest.approx(1.5 / 1000)
    assert metrics.mse(PRED, ALPHA) == pytest.approx(0.625 / 6)
    assert metrics.mad(PRED, ALPHA) == pytest.approx(1.5 / 6)


def test_trimap_errors_by_hand() -> None:
    assert metrics.sad_trimap(PRED, ALPHA, TRIMAP) == pytest.approx(1.25 / 1000)
    assert metrics.mse_trimap(PRED, ALPHA, TRIMAP) == pytest.approx(0.5625 / 2)
    assert metrics.mad_trimap(PRED, ALPHA, TRIMAP) == pytest.approx(1.25 / 2)
    assert metrics.sad_fg(PRED, ALPHA, TRIMAP) == pytest.approx(0.5 / 1000)  # (0,2): 0, (1,2): .5
    assert metrics.sad_bg(PRED, ALPHA, TRIMAP) == pytest.approx(0.25 / 1000)  # (0,0): 0, (1,0): .25


def test_trimap_forcing_leaves_the_callers_array_alone() -> None:
    pred = np.full((2, 3), 0.5)
    metrics.sad_trimap(pred, ALPHA, TRIMAP)
    np.testing.assert_array_equal(pred, np.full((2, 3), 0.5))


def test_trimap_without_128_divides_by_the_other_pixels() -> None:
    # No 128 anywhere: N = H·W − #255 − #0 = 6 − 2 − 3 = 1 (the pixel of value 100).
    trimap = np.array([[0, 0, 255], [0, 100, 255]], dtype=np.uint8)
    # p' = [[0, 0, 1], [0, .75, 1]]; |p' − α| = [[0, 1, 0], [0, .25, .5]]: sum 1.75, squares 1.3125.
    assert metrics.sad_trimap(PRED, ALPHA, trimap) == pytest.approx(1.75 / 1000)
    assert metrics.mse_trimap(PRED, ALPHA, trimap) == pytest.approx(1.3125)
    assert metrics.mad_trimap(PRED, ALPHA, trimap) == pytest.approx(1.75)


def test_trimap_with_no_unknown_pixels_is_undefined() -> None:
    trimap = np.array([[0, 0, 255], [0, 255, 255]], dtype=np.uint8)
    assert np.isnan(metrics.mse_trimap(PRED, ALPHA, trimap))
    assert np.isnan(metrics.mad_trimap(PRED, ALPHA, trimap))


def test_compute_all_keys() -> None:
    assert list(compute_all(PRED, ALPHA)) == ["SAD", "MSE", "MAD", "GRAD", "CONN"]
    assert list(compute_all(PRED, ALPHA, TRIMAP)) == [
        "SAD", "MSE", "MAD", "SAD_TRIMAP", "MSE_TRIMAP", "MAD_TRIMAP", "SAD_FG", "SAD_BG", "GRAD", "CONN",
    ]
    assert tuple(compute_all(PRED, ALPHA, TRIMAP)) == metrics.KEYS
    assert list(compute_all(PRED, ALPHA, fast=True)) == ["SAD", "MSE", "MAD"]
    assert compute_all(PRED, ALPHA, TRIMAP)["SAD_FG"] == pytest.approx(0.5 / 1000)


def _smooth(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    x = uniform_filter(rng.random(shape), 3)
    return (x - x.min()) / (x.max() - x.min())


def _gradient_magnitude_by_convolution(x: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """|∇x| with a hand-built derivative-of-Gaussian kernel, mirrored edges, float64."""
    radius = int(4 * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(t**2) / (2 * sigma**2))
    g /= g.sum()
    dg = -t / sigma**2 * g
    padded = np.pad(x, radius, mode="symmetric")  # scipy's 'reflect' mode

    def filt(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
        return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis, image)

    dy = filt(filt(padded, dg, 0), g, 1)
    dx = filt(filt(padded, g, 0), dg, 1)
    return np.hypot(dx, dy)


def test_grad_matches_an_independent_convolution() -> None:
    rng = np.random.default_rng(0)
    pred, alpha = _smooth(rng, (16, 21)), _smooth(rng, (16, 21))
    magnitude = _gradient_magnitude_by_convolution
    expected = np.sum((magnitude(pred) - magnitude(alpha)) ** 2) / 10
    assert expected > 0.01  # not trivially zero
    assert grad(pred, alpha) == pytest.approx(expected, rel=1e-4)


def test_grad_zero_symmetric_and_transpose_invariant() -> None:
    rng = np.random.default_rng(1)
    pred, alpha = _smooth(rng, (12, 17)), _smooth(rng, (12, 17))
    assert grad(alpha, alpha) == 0
    assert grad(alpha * 0.5 + 0.25, alpha * 0.5 + 0.5) == pytest.approx(0, abs=1e-9)  # a constant shift
    assert grad(pred, alpha) == pytest.approx(grad(alpha, pred))
    assert grad(pred, alpha) == pytest.approx(grad(pred.T.copy(), alpha.T.copy()), rel=1e-5)


def test_conn_diagonal_pixels_are_not_connected() -> None:
    # ∩ at t ≤ .6 is the diagonal {(0,0), (1,1)}: two 4-connected components of area 1; the tie goes to
    # (0,0), the first in raster order. So l = 0 at (0,1), (1,0), (1,1) (set at t=.1), and (0,0) is
    # never cut off: l = 1. φ_pred = [[1, .75], [.75, .35]], φ_alpha = [[1, 1], [1, 0]] → Σ|Δ| = .85.
    # (8-connectivity, or the tie going to (1,1), would give l = .6 at (1,1) and .9.)
    pred = np.array([[1.0, 0.25], [0.25, 0.65]])
    alpha = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert conn(pred, alpha) == pytest.approx(0.85 / 1000, rel=1e-6)


def test_conn_row_traced_by_hand() -> None:
    # t ≤ .5: ∩ = [1,1,0,1] → Ω = {0,1}: l = 0 at pixels 2, 3. t = .6-.8: ∩ = [1,0,0,1], tie → Ω = {0}:
    # l = .5 at pixel 1. t = .9: ∩ = [0,0,0,1] → Ω = {3}: l = .8 at pixel 0. So l = [.8, .5, 0, 0];
    # d_pred = [0, 0, 1, 1] → φ = [1, 1, 0, 0]; d_alpha = [.2, .5, 0, 1] → φ = [.8, .5, 1, 0]; Σ|Δ| = 1.7.
    pred = np.array([[0.8, 0.5, 1.0, 1.0]])
    alpha = np.array([[1.0, 1.0, 0.0, 1.0]])
    assert conn(pred, alpha) == pytest.approx(1.7 / 1000, rel=1e-6)


def test_conn_uses_the_arange_thresholds() -> None:
    # np.arange(0, 1.1, .1)[6] is 0.6000000000000001, so a pixel of 0.6 drops out at the 6th threshold:
    # l = .5, d_pred = .1 (< .15, φ = 1), d_alpha = .5 (φ = .5) → .5. Literal thresholds would give .4.
    pred = np.array([[1.0, 0.6]])
    alpha = np.array([[1.0, 1.0]])
    assert conn(pred, alpha) == pytest.approx(0.5 / 1000)


def test_conn_counts_a_distance_of_exactly_015() -> None:
    # t = .1: ∩ = [1, 0] → l = 0 at pixel 1 (pixel 0 ends at 1). d_alpha = .15 ≥ .15 → φ = .85; d_pred = 0.
    pred = np.array([[1.0, 0.0]])
    alpha = np.array([[1.0, 0.15]])
    assert conn(pred, alpha) == pytest.approx(0.15 / 1000)
    assert conn(alpha, pred) == pytest.approx(0.15 / 1000)  # the definition is symmetric


def test_conn_when_nothing_passes_the_first_threshold() -> None:
    # Empty at t = .1 (and above): the official code assigns nothing, so every l ends at 1 and φ = 1.
    # (Assigning l = 0 there would give φ_alpha = .5 at the first pixel.)
    pred = np.array([[0.05, 0.05]])
    alpha = np.array([[0.5, 0.0]])
    assert conn(pred, alpha) == 0
    assert conn(alpha, alpha) == 0


def test_largest_component_matches_skimage() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        h, w = rng.integers(1, 10, size=2)
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        regions = regionprops(label(mask, connectivity=1))
        ours = largest_component(mask)
        if not regions:
            assert ours is None
            continue
        best = regions[int(np.argmax([r.area for r in regions]))]
        expected = np.zeros(mask.shape, dtype=bool)
        expected[best.coords[:, 0], best.coords[:, 1]] = True
        np.testing.assert_array_equal(ours, expected)


def test_largest_component_tie_goes_to_the_first_in_raster_order() -> None:
    mask = np.array([[0, 0, 1], [1, 0, 1], [1, 0, 0]], dtype=bool)  # {(0,2),(1,2)} starts first
    np.testing.assert_array_equal(largest_component(mask), [[0, 0, 1], [0, 0, 1], [0, 0, 0]])


def test_float32_inputs_work() -> None:
    values = compute_all(PRED.astype(np.float32), ALPHA.astype(np.float32), TRIMAP)
    assert values["SAD"] == pytest.approx(1.5 / 1000, rel=1e-6)
    assert values["MSE_TRIMAP"] == pytest.approx(0.5625 / 2, rel=1e-6)


@pytest.mark.parametrize(
    ("pred", "alpha", "trimap", "words"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2)), None, ["(2, 3)", "(3, 2)"]),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2), np.uint8), ["trimap", "(2, 2)", "(2, 3)"]),
        (np.zeros((2, 3, 1)), np.zeros((2, 3)), None, ["pred", "(2, 3, 1)"]),
        (np.zeros((2, 3), np.uint8), np.zeros((2, 3)), None, ["pred", "uint8"]),
        (np.full((2, 3), 255.0), np.zeros((2, 3)), None, ["pred", "[0, 1]"]),
        (np.zeros((2, 3)), np.full((2, 3), np.nan), None, ["alpha", "[0, 1]"]),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(pred, alpha, trimap, words) -> None:
    with pytest.raises(ValueError) as error:
        compute_all(pred, alpha, trimap)
    for word in words:
        assert word in str(error.value)
