"""Training data for P3M-Net: the P3M-10k folder layouts and the official augmentation (SPEC §9).

A sample is what the official loader gives, re-read from MM `core/data.py`: a crop of 512, 768 or 1024 px
whose top-left corner lies (p = 0.5) on an unknown-trimap pixel, a horizontal flip (p = 0.5), and a
cv2 INTER_LINEAR resize to `out_size`; the trimap is made online by eroding / dilating the alpha with a
random elliptical kernel (15-30 px at the source resolution).

The trimap is resized with the other maps (INTER_LINEAR, as the official code) and then read as classes:
exactly 0 → background, exactly 255 → foreground, anything else → unknown. The official code reads the
blended edge pixels that way for its cross-entropy, but leaves them out of the local alpha loss
(`trimap == 128`); here one rule serves both (a one-pixel difference at the band's edges).

Every random choice comes from one generator seeded by (seed, epoch, index), so a sample is the same
whichever worker reads it and whatever order the loader asks in.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from model.errors import P3MError
from model.imageio import IMAGE_EXTENSIONS, read_gray, read_rgb
from model.p3mnet.inference import IMAGENET_MEAN, IMAGENET_STD

# Folder names, in order of preference: the P3M-10k ones first, then plain pairs.
IMAGE_DIRS = ("blurred_image", "original_image", "images", "image")
ALPHA_DIRS = ("mask", "alphas", "alpha")


# Trimap classes, as the official cross-entropy target: 0 → 0, 255 → 2, anything else → 1.
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """Where a data set's files are: images and alphas, and the optional extras of P3M-10k."""

    images: Path
    alphas: Path
    trimaps: Path | None = None  # P3M-500-P/NP: the official 0/128/255 test trimaps
    facemasks: Path | None = None  # P3M-10k train and P3M-500-P (not used by the official training)
    fg: Path | None = None  # foreground colours (the official loader's train/fg/; not in the public release)
    bg: Path | None = None  # background colours (train/bg/)


@dataclass(frozen=True)
class Sample:
    """The files of one image, matched by file stem."""

    stem: str
    image: Path
    alpha: Path
    trimap: Path | None = None
    facemask: Path | None = None
    fg: Path | None = None
    bg: Path | None = None


def find_layout(root: str | Path) -> Layout:
    """The layout under `root`: a P3M-10k root (uses train/), its train/, P3M-500-P (blurred_image/ mask/
    trimap/), P3M-500-NP (original_image/ mask/ trimap/), or a plain images/ + alphas/ pair."""
    root = Path(root)
    if not root.is_dir():
        raise P3MError(f"data folder not found: {root}", "check the path")
    if (root / "train").is_dir() and not _first_dir(root, IMAGE_DIRS):
        root = root / "train"
    images, alphas = _first_dir(root, IMAGE_DIRS), _first_dir(root, ALPHA_DIRS)
    if images is None or alphas is None:
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "no folders"
        raise P3MError(
            f"{root}: no {'image' if images is None else 'alpha'} folder (found: {found})",
            f"expected one of {'/'.join(IMAGE_DIRS)} and one of {'/'.join(ALPHA_DIRS)} "
            "(P3M-10k train/, P3M-500-P/NP, or images/ + alphas/)",
        )
    extra = {name: root / name if (root / name).is_dir() else None for name in ("trimap", "facemask", "fg", "bg")}
    return Layout(images, alphas, extra["trimap"], extra["facemask"], extra["fg"], extra["bg"])


def list_samples(layout: Layout) -> list[Sample]:
    """Every image with its alpha (and extras), sorted by stem; an image without an alpha is an error."""
    images = files_by_stem(layout.images)
    alphas = files_by_stem(layout.alphas)
    if not images:
        raise P3MError(f"no images in {layout.images}", f"expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    missing = sorted(set(images) - set(alphas))
    if missing:
        shown = ", ".join(missing[:5]) + (f", ... {len(missing) - 5} more" if len(missing) > 5 else "")
        raise P3MError(
            f"{len(missing)} image(s) in {layout.images} have no alpha in {layout.alphas} ({shown})",
            "every image needs an alpha matte of the same name",
        )
    extras = {name: files_by_stem(folder) if folder else {} for name, folder in
              (("trimap", layout.trimaps), ("facemask", layout.facemasks), ("fg", layout.fg), ("bg", layout.bg))}
    return [
        Sample(stem, images[stem], alphas[stem], **{name: found.get(stem) for name, found in extras.items()})
        for stem in sorted(images)
    ]


@dataclass(frozen=True)
class Augment:
    """The official training augmentation's settings (MM `core/config.py` and `core/data.py`)."""

    out_size: int = 512
    crop_sizes: tuple[int, ...] = (512, 768, 1024)
    trimap_kernel: tuple[int, int] = (15, 30)  # elliptical kernel size range, inclusive, at the source size
    unknown_crop_p: float = 0.5  # probability that the crop's top-left corner is an unknown-trimap pixel
    flip_p: float = 0.5


class MattingDataset(Dataset):
    """Augmented training samples as dicts of tensors (see `__getitem__`); call `set_epoch` each epoch."""

    def __init__(self, samples: list[Sample], augment: Augment = Augment(), seed: int = 0) -> None:
        if not samples:
            raise P3MError("the training set is empty", "point train_dir at a folder with images and alphas")
        self.samples = samples
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.has_facemasks = any(s.facemask is not None for s in samples)

    @classmethod
    def from_folder(cls, root: str | Path, augment: Augment = Augment(), seed: int = 0) -> MattingDataset:
        return cls(list_samples(find_layout(root)), augment, seed)

    def set_epoch(self, epoch: int) -> None:
        """New random crops for a new epoch (worker processes copy the dataset when a loader iterates)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One sample, all maps `out_size` square:

        image: 3×S×S float32, ImageNet-normalised RGB (the network input);
        alpha: 1×S×S float32 in [0, 1];
        trimap: 1×S×S int64 classes 0 background / 1 unknown / 2 foreground;
        fg, bg: 3×S×S float32 RGB in [0, 1] with image ≈ alpha·fg + (1 − alpha)·bg (read, or estimated);
        facemask: 1×S×S float32 in [0, 1], only when the data set has facemask/.
        """
        sample = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        rgb = read_rgb(sample.image)
        alpha = read_gray(sample.alpha)
        _same_size(sample.image, rgb, sample.alpha, alpha)
        kernel = int(rng.integers(self.augment.trimap_kernel[0], self.augment.trimap_kernel[1] + 1))
        trimap = make_trimap(alpha, kernel)

        maps: dict[str, np.ndarray] = {"image": rgb, "alpha": alpha.astype(np.float32) / 255.0, "trimap": trimap}
        for name in ("fg", "bg"):
            path = getattr(sample, name)
            if path is not None:
                maps[name] = read_rgb(path)
                _same_size(sample.image, rgb, path, maps[name])
        if sample.facemask is not None:
            maps["facemask"] = read_gray(sample.facemask)
        elif self.has_facemasks:
            maps["facemask"] = np.zeros_like(alpha)  # every sample of a batch must have the same keys

        maps = crop_flip_resize(maps, trimap, self.augment, rng)
        image01 = maps["image"].astype(np.float32) / 255.0
        alpha01 = maps["alpha"]
        if "fg" in maps and "bg" in maps:
            fg, bg = maps["fg"].astype(np.float32) / 255.0, maps["bg"].astype(np.float32) / 255.0
        else:
            fg, bg = estimate_fg_bg(image01, alpha01)

        out = {
            "image": normalize(image01),
            "alpha": torch.from_numpy(alpha01)[None],
            "trimap": torch.from_numpy(trimap_classes(maps["trimap"]))[None],
            "fg": _chw(fg),
            "bg": _chw(bg),
        }
        if "facemask" in maps:
            out["facemask"] = torch.from_numpy(maps["facemask"].astype(np.float32) / 255.0)[None]
        return out


def make_loader(
    dataset: MattingDataset, batch_size: int, workers: int = 0, epoch: int = 0, pin_memory: bool = False
) -> DataLoader:
    """A shuffled loader for one epoch; the order and the samples depend only on (seed, epoch)."""
    dataset.set_epoch(epoch)
    generator = torch.Generator().manual_seed(dataset.seed * 1_000_003 + epoch)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=len(dataset) >= batch_size,  # keep BatchNorm off 1-image batches where we can
        worker_init_fn=_one_thread if workers else None,
        # Not fork: a worker forked while another thread holds a lock (MediaPipe's, OpenMP's) can hang forever.
        multiprocessing_context="forkserver" if workers else None,
    )


def _one_thread(worker_id: int) -> None:
    """Workers run in parallel already: OpenCV and torch threads inside each would oversubscribe the CPU."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_trimap(alpha: np.ndarray, kernel_size: int) -> np.ndarray:
    """The official online trimap (uint8 0/128/255): foreground (alpha == 255) eroded, and anything
    non-zero dilated, by an elliptical kernel; the band between is unknown."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    fg = cv2.erode((alpha == 255).astype(np.uint8), kernel)
    fg_or_unknown = cv2.dilate((alpha != 0).astype(np.uint8), kernel)
    return (fg * 255 + (fg_or_unknown - fg) * 128).astype(np.uint8)


def trimap_classes(trimap: np.ndarray) -> np.ndarray:
    """0/128/255 (or a resized blend of them) → int64 classes: 0 → 0, 255 → 2, anything else → 1."""
    classes = np.full(trimap.shape, UNKNOWN, dtype=np.int64)
    classes[trimap == 0] = BACKGROUND
    classes[trimap == 255] = FOREGROUND
    return classes


def crop_box(trimap: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[int, int, int]:
    """(top, left, size) of a square crop: a random size from `crop_sizes` if smaller than the image's
    short side (else the smallest, capped by the short side), its corner on an unknown pixel with
    p = `unknown_crop_p`, else anywhere it fits."""
    h, w = trimap.shape
    size = int(augment.crop_sizes[int(rng.integers(len(augment.crop_sizes)))])
    if size >= min(h, w):
        size = min(min(augment.crop_sizes), h, w)
    corners = trimap[: h - size + 1, : w - size + 1]
    ys, xs = np.nonzero(corners == 128) if rng.random() < augment.unknown_crop_p else (None, None)
    if ys is None or ys.size == 0:
        return int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1)), size
    pick = int(rng.integers(ys.size))
    return int(ys[pick]), int(xs[pick]), size


def crop_flip_resize(
    maps: dict[str, np.ndarray], trimap: np.ndarray, augment: Augment, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Crop every map with one box, flip them all (or none) horizontally, resize to `out_size` (INTER_LINEAR)."""
    top, left, size = crop_box(trimap, augment, rng)
    flip = rng.random() < augment.flip_p
    out = {}
    for name, m in maps.items():
        m = m[top: top + size, left: left + size]
        if flip:
            m = m[:, ::-1]
        out[name] = cv2.resize(np.ascontiguousarray(m), (augment.out_size, augment.out_size),
                               interpolation=cv2.INTER_LINEAR)
    return out


def estimate_fg_bg(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours (H×W×3 float32 in [0, 1]) with image ≈ α·fg + (1 − α)·bg.

    The public P3M-10k has no fg/bg, which the composition loss needs. fg: blur-fusion estimation
    (Forte & Pitié 2021, two passes); bg: solved from the compositing equation where α < 1, so the
    ground-truth alpha composites back to the image (up to clipping).
    """
    size = max(image.shape[:2])
    a = alpha[..., None]
    fg, bg = image, image
    for radius in (max(3, size // 8), max(3, size // 85)):
        fg, bg = _blur_fusion(image, fg, bg, a, radius)
    solved = (image - a * fg) / np.maximum(1.0 - a, 1e-3)
    bg = np.where(a < 0.99, np.clip(solved, 0.0, 1.0), bg)
    return fg.astype(np.float32), bg.astype(np.float32)


def _blur_fusion(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, a: np.ndarray, radius: int):
    k = (radius, radius)
    blur_a = cv2.blur(a[..., 0], k)[..., None]
    blur_fg = cv2.blur(fg * a, k) / (blur_a + 1e-5)
    blur_bg = cv2.blur(bg * (1.0 - a), k) / ((1.0 - blur_a) + 1e-5)
    fg = blur_fg + a * (image - a * blur_fg - (1.0 - a) * blur_bg)
    return np.clip(fg, 0.0, 1.0), blur_bg


def normalize(image01: np.ndarray) -> torch.Tensor:
    """H×W×3 float RGB in [0, 1] → 3×H×W ImageNet-normalised float32 tensor (the network input)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (_chw(image01) - mean) / std


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `normalize` for a (N×)3×H×W tensor: RGB in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device)[:, None, None]
    return image * std + mean


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).contiguous()


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def files_by_stem(folder: Path) -> dict[str, Path]:
    """stem → file for the image files in `folder`; the first extension in IMAGE_EXTENSIONS wins."""
    found: dict[str, Path] = {}
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    for p in sorted(files, key=lambda p: IMAGE_EXTENSIONS.index(p.suffix.lower())):
        found.setdefault(p.stem, p)
    return found


def _same_size(a_path: Path, a: np.ndarray, b_path: Path, b: np.ndarray) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise P3MError(
            f"size mismatch: {a_path.name} is {a.shape[1]}x{a.shape[0]} but {b_path.name} is {b.shape[1]}x{b.shape[0]}",
            "an image and its alpha (and extras) must have the same size",
        )
