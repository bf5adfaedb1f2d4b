"""The bundled default: MediaPipe's selfie segmenter (vendored in model/assets/, no download, CPU)."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model.bundled import ASSETS, import_mediapipe, quiet_native_stderr
from model.errors import P3MError
from model.matters.base import Matter


class MediaPipeMatter(Matter):
    """The bundled MediaPipe selfie segmenter (Tasks API, CPU); its person confidence mask is the alpha.

    Two models: `general` (256×256 input) and `landscape` (144×256). `auto` gives each image the one whose
    input shape is nearer its own: landscape for images wider than 4:3 (as close to P3M-Net there, and
    cheaper), general for the rest (closer on upright shapes); bench/RESULTS.md has the comparison.
    """

    name = "mediapipe"
    VARIANTS = {"general": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
    offline_batch = 2       # two segmenters at once (matte_batch) keep the cores busier offline

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
        self._chosen: set[str] = set()                # the models auto has given images so far

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

    def variant_for(self, height: int, width: int) -> str:
        """The model an image of this size gets."""
        if self.variant != "auto":
            return self.variant
        return "landscape" if 3 * width > 4 * height else "general"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return _segment(self._segmenters_for(rgb, 1)[0], rgb)

    def matte_batch(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The images at once, each on its own segmenter and thread (same mattes as one by one). A MediaPipe
        call passes through three threads (the caller's, its dispatcher's, its graph's) and waits at each
        handoff when the cores are busy; two calls in flight keep 2 cores busier (bench/RESULTS.md)."""
        if len(rgbs) < 2 or len({rgb.shape for rgb in rgbs}) > 1:
            return [self(rgb) for rgb in rgbs]
        first, *spares = self._segmenters_for(rgbs[0], len(rgbs))
        others = [self._pool.submit(_segment, s, rgb) for s, rgb in zip(spares, rgbs[1:])]
        return [_segment(first, rgbs[0]), *(future.result() for future in others)]

    def _segmenters_for(self, rgb: np.ndarray, n: int) -> list:
        """`n` segmenters of the model for `rgb`'s shape; more are made (and the pool grown) on first need."""
        if not self._segmenters:
            raise RuntimeError("MediaPipeMatter used after close()")
        variant = self.variant_for(*rgb.shape[:2])
        self._chosen.add(variant)
        segmenters = self._segmenters[variant]
        if len(segmenters) < n:
            segmenters += [self._new_segmenter(variant) for _ in range(n - len(segmenters))]
        if n - 1 > self._pool_size:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(n - 1, thread_name_prefix="p3m-mediapipe"), n - 1
        return segmenters[:n]

    def describe(self) -> str:
        if self.variant != "auto":
            return f"bundled MediaPipe selfie segmenter ({self.variant}, CPU)"
        if not self._chosen:
            return "bundled MediaPipe selfie segmenter (landscape for frames wider than 4:3, else general; CPU)"
        return f"bundled MediaPipe selfie segmenter ({' and '.join(sorted(self._chosen))}, chosen by shape; CPU)"

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
