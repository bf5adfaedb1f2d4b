"""Shared fixtures: the read-only data folder beside the repository."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """`../shared` (data and parity vectors); skipped only where it is absent, as in a user's clone."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a user's clone): parity data not available")
    return SHARED
