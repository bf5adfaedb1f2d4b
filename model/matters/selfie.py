"""The bundled default: MediaPipe's selfie segmenter (vendored in model/assets/, no download, CPU)."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model.bundled import ASSETS, import_mediapipe, quiet_native_stderr
from model.errors import P3MError
from model.matters.base import Matter

# `auto` takes the landscape model (the cheaper one) while its mean uncertainty is at most this many times the
# general model's; a shot switches only when the ratio leaves the band around it (no flapping between models).
LANDSCAPE_TRUST = 1.25
SWITCH_BAND = (1.1, 1.4)


def uncertainty(alpha: np.ndarray) -> float:
    """Mean of 4·α·(1 − α): 0 where a mask is all 0 or 1, 1 where it is all 0.5."""
    return float(np.mean(4.0 * alpha * (1.0 - alpha)))


def trusted_variant(general: np.ndarray, landscape: np.ndarray, current: str | None = None) -> str:
    """Which model's mask of the same image to trust: landscape unless it is clearly less sure than general
    (its failures, whole regions kept or dropped, come with many half-sure pixels). `current`: the model a
    shot uses now, kept unless the ratio leaves SWITCH_BAND."""
    ratio = uncertainty(landscape) / max(uncertainty(general), 1e-6)
    limit = {"landscape": SWITCH_BAND[1], "general": SWITCH_BAND[0]}.get(current or "", LANDSCAPE_TRUST)
    return "landscape" if ratio <= limit else "general"


class MediaPipeMatter(Matter):
    """The bundled MediaPipe selfie segmenter (Tasks API, CPU); its person confidence mask is the alpha.

    Two models: `general` (256×256 input) and `landscape` (144×256). `auto` runs both on the first image of a
    size and again every `recheck_every` images, and between checks the one `trusted_variant` chose (by what
    works on the frame, not its shape; bench/RESULTS.md has the comparison with the other options).
    """

    name = "mediapipe"
    VARIANTS = {"general": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
    offline_batch = 2       # two segmenters at once (matte_batch) keep the cores busier offline
    recheck_every = 30      # images between two checks of the choice (a second at 30 fps)

    def __init__(self, variant: str = "auto") -> None:
        if variant not in ("auto", *self.VARIANTS):
            raise P3MError(f"unknown MediaPipe variant {variant!r}",
                           f"use one of: auto, {', '.join(self.VARIANTS)}")
        used = list(self.VARIANTS) if variant == "auto" else [variant]
        for name in used:
            if not (ASSETS / self.VARIANTS[name]).is_file():
                raise P3MError(f"bundled MediaPipe model missing: {ASSETS / self.VARIANTS[name]}",
                               "reinstall p3m-stream, or run python model/assets/extract_assets.py")
        import_mediapipe()              # deferred: native runtime; its unused plotting helpers skipped
        self.variant = variant
        # Per model: the first segmenter serves single calls, the others matte_batch's extra images.
        self._segmenters: dict[str, list] = {name: [self._new_segmenter(name)] for name in used}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._choice: dict[tuple[int, int], str] = {}     # auto: the model each image size uses now
        self._since_check: dict[tuple[int, int], int] = {}
        self._chosen: set[str] = set()                    # the models auto has given images so far

    @staticmethod
    def _new_segmenter(variant: str):
        from mediapipe.tasks.python import BaseOptions, vision

        # IMAGE mode: VIDEO mode gave bit-identical masks (the segmenter keeps no temporal state) but
        # demands increasing timestamps, which a matter that sees dropped or repeated frames would have
        # to invent. Temporal smoothing is the TemporalSmoother stage's job.
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(ASSETS / MediaPipeMatter.VARIANTS[variant])),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        with quiet_native_stderr():      # TFLite and glog announce themselves on stderr at every load
            return vision.ImageSegmenter.create_from_options(options)

    def current_variant(self, height: int, width: int) -> str | None:
        """The model images of this size get now (None: `auto` has not seen one yet)."""
        return self.variant if self.variant != "auto" else self._choice.get((height, width))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.matte_batch([rgb])[0]

    def matte_batch(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The images at once, each on its own segmenter and thread (same mattes as one by one). A MediaPipe
        call passes through three threads (the caller's, its dispatcher's, its graph's) and waits at each
        handoff when the cores are busy; two calls in flight keep 2 cores busier (bench/RESULTS.md)."""
        if not self._segmenters:
            raise RuntimeError("MediaPipeMatter used after close()")
        if len({rgb.shape for rgb in rgbs}) > 1:
            return [alpha for rgb in rgbs for alpha in self.matte_batch([rgb])]
        if not rgbs:
            return []
        first = None
        if self.variant == "auto":
            first = self._check_choice(rgbs[0], len(rgbs))
            rgbs = rgbs[1:] if first is not None else rgbs
        alphas = self._run(self._variant(rgbs[0]) if rgbs else "general", rgbs)
        return alphas if first is None else [first, *alphas]

    def _variant(self, rgb: np.ndarray) -> str:
        variant = self.current_variant(*rgb.shape[:2]) or "general"
        self._chosen.add(variant)
        return variant

    def _check_choice(self, rgb: np.ndarray, count: int) -> np.ndarray | None:
        """On the first image of a size and every `recheck_every` images: both models on `rgb` (the first of
        `count` images) at once, the choice updated, and the chosen model's alpha returned; None when no check
        is due."""
        key = rgb.shape[:2]
        since = self._since_check.get(key, self.recheck_every)
        if since < self.recheck_every:
            self._since_check[key] = since + count
            return None
        self._since_check[key] = count
        general, landscape = self._segmenters["general"][0], self._segmenters["landscape"][0]
        pool = self._grow_pool(1)
        landscape_alpha = pool.submit(_segment, landscape, rgb)
        alphas = {"general": _segment(general, rgb), "landscape": landscape_alpha.result()}
        self._choice[key] = trusted_variant(alphas["general"], alphas["landscape"], self._choice.get(key))
        self._chosen.add(self._choice[key])
        return alphas[self._choice[key]]

    def _run(self, variant: str, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`rgbs` (same shape) through `variant`, each on its own segmenter; more are made on first need."""
        if not rgbs:
            return []
        segmenters = self._segmenters[variant]
        if len(segmenters) < len(rgbs):
            segmenters += [self._new_segmenter(variant) for _ in range(len(rgbs) - len(segmenters))]
        if len(rgbs) == 1:
            return [_segment(segmenters[0], rgbs[0])]
        pool = self._grow_pool(len(rgbs) - 1)
        others = [pool.submit(_segment, s, rgb) for s, rgb in zip(segmenters[1:], rgbs[1:])]
        return [_segment(segmenters[0], rgbs[0]), *(future.result() for future in others)]

    def _grow_pool(self, n: int) -> ThreadPoolExecutor:
        """A pool of at least `n` threads for the calls beside the caller's own."""
        if self._pool is None or n > self._pool_size:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(n, thread_name_prefix="p3m-mediapipe"), n
        return self._pool

    def describe(self) -> str:
        if self.variant != "auto":
            return f"bundled MediaPipe selfie segmenter ({self.variant}, CPU)"
        if not self._chosen:
            return "bundled MediaPipe selfie segmenter (landscape or general, whichever is surer of the frame; CPU)"
        return f"bundled MediaPipe selfie segmenter ({' and '.join(sorted(self._chosen))}, chosen by confidence; CPU)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool, self._pool_size = None, 0
        for segmenters in self._segmenters.values():
            for segmenter in segmenters:
                segmenter.close()
        self._segmenters = {}


def _segment(segmenter, rgb: np.ndarray) -> np.ndarray:
    """One MediaPipe segmenter's person confidence for an H×W×3 uint8 RGB image, as a fresh float32 array."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    mask = segmenter.segment(image).confidence_masks[0].numpy_view()
    # The view aliases a buffer the next call overwrites: copy before returning.
    return np.clip(mask.reshape(rgb.shape[:2]), 0.0, 1.0).astype(np.float32, copy=True)
