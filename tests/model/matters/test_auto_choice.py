"""`--model auto`: the best installed P3M-Net (ViTAE-S, R34, Swin-T), else the old location, else the bundled
model with a hint to download P3M-Net, given once; `--model p3mnet-<variant>` finds its installed weights."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from model import matters
from model.matters import auto
from model.matters.registry import make_matter
from model.zoo import store
from model.zoo.catalog import entry


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("P3M_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(auto, "_hinted", False)
    return tmp_path / "home" / "models"


def install(name: str, tmp_path: Path) -> Path:
    """Record a stand-in file as installed (what `p3m models download` does after its check)."""
    stand_in = tmp_path / f"{name}.pth"
    stand_in.write_bytes(name.encode())
    return store.install(entry(name), stand_in, "0" * 64, "a test")


def test_the_best_installed_variant_wins(home, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="model.matters.auto")
    paths = {name: install(name, tmp_path) for name in ("p3mnet-swin-t", "p3mnet-r34", "p3mnet-vitae-s")}
    assert auto.choose(None) == ("p3mnet", paths["p3mnet-vitae-s"])
    assert "--model auto: p3mnet-vitae-s, the best P3M-Net installed (before p3mnet-r34, p3mnet-swin-t)" in caplog.text
    store.remove(entry("p3mnet-vitae-s"))
    assert auto.choose(None) == ("p3mnet", paths["p3mnet-r34"])
    store.remove(entry("p3mnet-r34"))
    assert auto.choose(None) == ("p3mnet", paths["p3mnet-swin-t"])


def test_given_weights_win_over_installed_ones(home, tmp_path):
    install("p3mnet-vitae-s", tmp_path)
    assert auto.choose(tmp_path / "mine.pth") == ("p3mnet", tmp_path / "mine.pth")


def test_a_deleted_file_is_not_installed(home, tmp_path):
    install("p3mnet-vitae-s", tmp_path).unlink()
    assert auto.choose(None) == ("mediapipe", None)


def test_the_old_location_still_works_when_nothing_is_installed(home, tmp_path):
    legacy = tmp_path / "config" / "p3m-stream" / "p3mnet.pth"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"weights")
    assert auto.choose(None) == ("p3mnet", legacy)
    install("p3mnet-r34", tmp_path)
    assert auto.choose(None)[1] == home / "p3mnet-r34.pth"      # an installed model comes first


def test_without_p3mnet_the_bundled_model_and_one_hint(home, caplog):
    caplog.set_level(logging.INFO, logger="model.matters.auto")
    assert auto.choose(None) == ("mediapipe", None)
    assert auto.choose(None) == ("mediapipe", None)
    hints = [r.getMessage() for r in caplog.records if "p3m models download p3mnet-vitae-s" in r.getMessage()]
    assert len(hints) == 1 and str(home) in hints[0]


def test_make_matter_hands_the_installed_weights_to_p3mnet(home, tmp_path, monkeypatch):
    seen = []
    for name in ("p3mnet", "p3mnet-vitae-s"):
        monkeypatch.setitem(matters.registry._REGISTRY, name,
                            lambda weights, device, precision, name=name: seen.append((name, weights)))
    path = install("p3mnet-vitae-s", tmp_path)
    make_matter("auto", device="cpu")
    make_matter("p3mnet-vitae-s", device="cpu")
    make_matter("p3mnet-vitae-s", weights=tmp_path / "other.pth", device="cpu")
    assert seen == [("p3mnet", path), ("p3mnet-vitae-s", path), ("p3mnet-vitae-s", tmp_path / "other.pth")]


def test_p3mnet_without_weights_says_how_to_install_them(home):
    with pytest.raises(matters.registry.P3MError) as error:
        make_matter("p3mnet", device="cpu")
    assert "p3m models download p3mnet-vitae-s" in error.value.hint
