"""Shared fixtures: the read-only data folder beside the repository."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def no_installed_models(tmp_path_factory) -> Path:
    """An empty P3M_HOME for the whole run (subprocesses inherit it): no test sees or changes the models a
    developer installed with `p3m models`; a test that installs some sets its own."""
    import os

    home = tmp_path_factory.mktemp("p3m_home")
    os.environ["P3M_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def shared() -> Path:
    """`../shared` (data and parity vectors); skipped only where it is absent, as in a user's clone."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a user's clone): parity data not available")
    return SHARED


@pytest.fixture(scope="session")
def make_checkpoint(shared: Path):
    """`../shared/p3m/parity/make_checkpoint.py` as a module: `make_state_dict(seed)` in the official format."""
    import importlib.util

    path = shared / "p3m" / "parity" / "make_checkpoint.py"
    spec = importlib.util.spec_from_file_location("p3m_make_checkpoint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def seed3_pth(make_checkpoint, tmp_path_factory) -> Path:
    """An official-format .pth of the parity checkpoint with seed 3."""
    import torch

    path = tmp_path_factory.mktemp("ckpt") / "p3mnet_seed3.pth"
    torch.save({"state_dict": make_checkpoint.make_state_dict(seed=3)}, path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: on a busy 2-core machine two threads run forwards 3-7× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
