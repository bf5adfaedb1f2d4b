"""Test-double matters for the robustness tests (also loaded by tests/robustness/robust_cli.py in a real subprocess).

    key      alpha 1 on red pixels: instant at any size (4097×17 included)
    failing  raises RuntimeError("boom") at frame FAIL_AT (3)
    slow     sleeps SLOW_S per frame; touches $P3M_TEST_MARKER when it reaches frame $P3M_TEST_MARKER_AT
    loading  touches $P3M_TEST_MARKER, then takes 60 s to "load" (a signal arrives before any frame)
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from model.matters.base import Matter
from model.matters.registry import register_matter

FAIL_AT = 3
SLOW_S = 0.05


class KeyMatter(Matter):
    name = "key"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> str:
        return f"{self.name} test double"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        return ((rgb[..., 0] > 150) & (rgb[..., 2] < 120)).astype(np.float32)


class FailingMatter(KeyMatter):
    name = "failing"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.calls == FAIL_AT:
            raise RuntimeError("boom")
        return super().__call__(rgb)


class SlowMatter(KeyMatter):
    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.marker = os.environ.get("P3M_TEST_MARKER")
        self.marker_at = int(os.environ.get("P3M_TEST_MARKER_AT", "10"))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(SLOW_S)
        if self.marker and self.calls == self.marker_at:
            Path(self.marker).touch()
        return super().__call__(rgb)


class LoadingMatter(KeyMatter):
    name = "loading"

    def __init__(self) -> None:
        super().__init__()
        Path(os.environ["P3M_TEST_MARKER"]).touch()
        time.sleep(60)


def register() -> None:
    for cls in (KeyMatter, FailingMatter, SlowMatter, LoadingMatter):
        register_matter(cls.name, lambda weights, device, precision, cls=cls: cls())
