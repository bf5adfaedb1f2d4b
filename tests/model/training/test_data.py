"""The training-data reader: layouts, the official augmentation, alignment of the maps, determinism."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.training_data import write_synthetic_set

from model.errors import P3MError
from model.training.data import (
    Augment,
    MattingDataset,
    crop_box,
    crop_flip_resize,
    denormalize,
    estimate_fg_bg,
    find_layout,
    list_samples,
    make_loader,
    make_trimap,
    trimap_classes,
)

TINY = Augment(out_size=64, crop_sizes=(64, 80, 96), trimap_kernel=(3, 6))


@pytest.fixture(scope="module")
def p3m_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A P3M-10k-style root: train/blurred_image/*.jpg + train/mask/*.png, 12 images of 96×96."""
    root = tmp_path_factory.mktemp("p3m10k")
    write_synthetic_set(root, count=12, size=96)
    return root


def test_layouts(p3m_root: Path, tmp_path: Path):
    train = p3m_root / "train"
    for root in (p3m_root, train):
        layout = find_layout(root)
        assert (layout.images, layout.alphas, layout.trimaps) == (train / "blurred_image", train / "mask", None)
    # P3M-500-NP: original_image/ + mask/ + trimap/
    np_root = tmp_path / "P3M-500-NP"
    shutil.copytree(train / "blurred_image", np_root / "original_image")
    shutil.copytree(train / "mask", np_root / "mask")
    shutil.copytree(train / "mask", np_root / "trimap")
    layout = find_layout(np_root)
    assert (layout.images.name, layout.trimaps.name) == ("original_image", "trimap")
    samples = list_samples(layout)
    assert len(samples) == 12 and samples[0].stem == "synthetic_000" and samples[0].trimap.parent.name == "trimap"
    # A plain pair.
    plain = tmp_path / "plain"
    shutil.copytree(train / "blurred_image", plain / "images")
    shutil.copytree(train / "mask", plain / "alphas")
    assert len(list_samples(find_layout(plain))) == 12


def test_layout_errors_name_the_problem(p3m_root: Path, tmp_path: Path):
    with pytest.raises(P3MError, match="data folder not found"):
        find_layout(tmp_path / "nope")
    (tmp_path / "only_images" / "images").mkdir(parents=True)
    with pytest.raises(P3MError, match="no alpha folder"):
        find_layout(tmp_path / "only_images")
    broken = tmp_path / "broken"
    shutil.copytree(p3m_root / "train", broken)
    (broken / "mask" / "synthetic_003.png").unlink()
    with pytest.raises(P3MError, match="1 image.*no alpha.*synthetic_003"):
        list_samples(find_layout(broken))


def test_samples_are_shaped_and_aligned(p3m_root: Path):
    ds = MattingDataset.from_folder(p3m_root, TINY, seed=3)
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
        assert s["alpha"].shape == s["trimap"].shape == (1, 64, 64)
        assert s["fg"].shape == s["bg"].shape == (3, 64, 64)
        assert s["trimap"].dtype == torch.int64 and set(s["trimap"].unique().tolist()) <= {0, 1, 2}
        rgb, alpha, trimap = denormalize(s["image"]), s["alpha"][0], s["trimap"][0]
        # The shape is red, the background is not: the alpha's support is where the shape is.
        assert rgb[0][alpha > 0.99].min() > 0.6
        assert rgb[0][alpha < 0.01].max() < 0.35
        # The trimap agrees with the alpha: its known regions are exactly opaque / transparent.
        assert torch.all(alpha[trimap == 2] == 1) and torch.all(alpha[trimap == 0] == 0)
        # fg/bg recompose the image (estimated: the public P3M-10k has none).
        comp = alpha * s["fg"] + (1 - alpha) * s["bg"]
        assert (comp - rgb).abs().max() < 0.02


def test_flip_and_crop_apply_to_every_map_together(p3m_root: Path):
    sample = list_samples(find_layout(p3m_root))[1]
    rgb = cv2.cvtColor(cv2.imread(str(sample.image)), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(str(sample.alpha), 0)
    trimap = make_trimap(alpha, 5)
    maps = {"image": rgb, "alpha": alpha, "trimap": trimap}
    whole = Augment(out_size=96, crop_sizes=(96,))  # the crop is the image, the resize is the identity
    for flip_p, expect in ((1.0, lambda m: m[:, ::-1]), (0.0, lambda m: m)):
        out = crop_flip_resize(maps, trimap, Augment(**{**whole.__dict__, "flip_p": flip_p}), np.random.default_rng(0))
        for name, m in maps.items():
            np.testing.assert_array_equal(out[name], expect(m))
    # A real crop + resize: the same box for the image and the alpha.
    aug = Augment(out_size=32, crop_sizes=(64,), flip_p=1.0)
    out = crop_flip_resize(maps, trimap, aug, np.random.default_rng(5))
    top, left, size = crop_box(trimap, aug, np.random.default_rng(5))
    for name in ("image", "alpha"):
        crop = np.ascontiguousarray(maps[name][top: top + size, left: left + size][:, ::-1])
        np.testing.assert_array_equal(out[name], cv2.resize(crop, (32, 32), interpolation=cv2.INTER_LINEAR))


def test_crop_box_rules():
    trimap = np.zeros((96, 96), np.uint8)
    trimap[10:13, 20:23] = 128
    always_unknown = Augment(crop_sizes=(64,), unknown_crop_p=1.0)
    for seed in range(20):
        top, left, size = crop_box(trimap, always_unknown, np.random.default_rng(seed))
        assert size == 64 and 10 <= top < 13 and 20 <= left < 23
    # Official size rule: a size not below the short side falls back (to the smallest, here capped).
    sizes = {crop_box(trimap, Augment(crop_sizes=(32, 64, 128)), np.random.default_rng(s))[2] for s in range(40)}
    assert sizes == {32, 64}
    assert crop_box(trimap, Augment(crop_sizes=(512, 768)), np.random.default_rng(0)) == (0, 0, 96)


def test_make_trimap_by_hand():
    alpha = np.zeros((40, 40), np.uint8)
    alpha[10:30, 10:30] = 255
    trimap = make_trimap(alpha, 3)  # the 3×3 ellipse is a cross: erode 20² → 18², dilate → 22² minus 4 corners
    assert np.count_nonzero(trimap == 255) == 18 * 18
    assert np.count_nonzero(trimap == 128) == 22 * 22 - 4 - 18 * 18
    assert set(np.unique(trimap)) == {0, 128, 255}
    np.testing.assert_array_equal(trimap_classes(np.array([0, 1, 127, 128, 254, 255])), [0, 1, 1, 1, 1, 2])


def test_estimated_fg_bg_recompose_the_image():
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    fg = np.stack([0.8 + 0.1 * xx, 0.3 * yy, 0.2 + 0 * xx], axis=-1)
    bg = np.stack([0.1 + 0 * xx, 0.5 + 0.3 * np.sin(6 * xx), 0.9 - 0.5 * yy], axis=-1)
    alpha = np.clip(3 - 6 * np.hypot(yy - 0.5, xx - 0.5) * 1.6, 0, 1)  # disc with a wide soft rim
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    est_fg, est_bg = estimate_fg_bg(image, alpha.astype(np.float32))
    assert est_fg.shape == est_bg.shape == image.shape and est_fg.min() >= 0 and est_fg.max() <= 1
    comp = alpha[..., None] * est_fg + (1 - alpha[..., None]) * est_bg
    assert np.abs(comp - image).max() < 2e-3
    rim = (alpha > 0.05) & (alpha < 0.95)  # fg and bg are nearer the true colours than the mixed pixel is
    assert np.abs(est_fg - fg)[rim].mean() < 0.7 * np.abs(image - fg)[rim].mean()
    assert np.abs(est_bg - bg)[rim].mean() < 0.7 * np.abs(image - bg)[rim].mean()


def test_deterministic_with_a_seed(p3m_root: Path):
    a = MattingDataset.from_folder(p3m_root, TINY, seed=7)
    b = MattingDataset.from_folder(p3m_root, TINY, seed=7)
    for i in (0, 5):
        for key in a[i]:
            assert torch.equal(a[i][key], b[i][key])
    b.set_epoch(1)
    assert not torch.equal(a[0]["image"], b[0]["image"])  # a new epoch, new crops
    assert not torch.equal(a[0]["image"], MattingDataset.from_folder(p3m_root, TINY, seed=8)[0]["image"])
    # The same batches whatever the number of worker processes.
    serial = list(make_loader(a, batch_size=4, workers=0, epoch=2))
    parallel = list(make_loader(b, batch_size=4, workers=2, epoch=2))
    assert len(serial) == 3
    for x, y in zip(serial, parallel):
        assert all(torch.equal(x[k], y[k]) for k in x)


def test_face_masks_are_carried_when_the_set_has_them(p3m_root: Path, tmp_path: Path):
    train = tmp_path / "train"
    shutil.copytree(p3m_root / "train", train)
    (train / "facemask").mkdir()
    cv2.imwrite(str(train / "facemask" / "synthetic_000.png"), np.full((96, 96), 255, np.uint8))
    ds = MattingDataset.from_folder(train, TINY)
    assert ds[0]["facemask"].min() == 1 and ds[1]["facemask"].max() == 0  # missing files read as no face
