"""`p3m models download` end to end: from a stand-in Google Drive (its confirmation page, over TLS through a
proxy, as gdown meets the real one), from a plain HTTP mirror (a zip around the .pth), resumed after an
interruption, refused when corrupt or of another variant (nothing installed); then `p3m cutout --model auto`
uses what was installed, with no --weights."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers.fake_drive import FakeDrive
from helpers.media import write_clip

from model.p3mnet.checkpoint import save_official
from model.p3mnet.network import P3MNet
from model.zoo import store
from model.zoo.catalog import entry
from stream.cli.main import main

R34_DRIVE_ID = entry("p3mnet-r34").drive_id


@pytest.fixture(scope="module")
def r34(tmp_path_factory) -> Path:
    """A random-weight P3M-Net R34 in the official format, in float16 (half the bytes to move and check)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "p3mnet_r34.pth"
    save_official(P3MNet().half(), path)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("P3M_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "models"


def p3m(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def fake(tmp_path, monkeypatch, r34):
    with FakeDrive(tmp_path) as drive:
        for name, value in drive.env().items():
            monkeypatch.setenv(name, value)
        drive.drive[R34_DRIVE_ID] = ("p3mnet_pretrained_on_p3m10k.pth", r34.read_bytes())
        yield drive


def _installed(home: Path) -> dict:
    manifest = home / "installed.json"
    return json.loads(manifest.read_text()) if manifest.exists() else {}


def _leftovers(home: Path) -> list[str]:
    """Files under the models folder besides the manifest: installed weights, partial or refused downloads."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != "installed.json")


def test_download_from_google_drive_through_its_confirmation_page(fake, home, r34):
    result = p3m("models", "download", "p3mnet-r34", "-q")
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(r34.read_bytes()).hexdigest()
    assert f"sha256: {digest}" in result.output
    assert [(r.host, r.path) for r in fake.requests] == [("drive.google.com", "/uc"),
                                                         ("drive.usercontent.google.com", "/download")]
    assert _installed(home)["p3mnet-r34"]["sha256"] == digest
    assert _leftovers(home) == ["p3mnet-r34.pth"]                # the staging download is gone
    path = p3m("models", "path", "p3mnet-r34")
    assert path.exit_code == 0 and Path(path.output.strip()).read_bytes() == r34.read_bytes()

    listed = p3m("models", "list").output
    assert "installed" in listed and f"sha256 {digest}" in listed
    removed = p3m("models", "remove", "p3mnet-r34")
    assert removed.exit_code == 0 and _installed(home) == {} and _leftovers(home) == []
    assert "is not installed" in p3m("models", "path", "p3mnet-r34").output


def test_a_mirror_serving_a_zip_around_the_pth(fake, home, r34, tmp_path):
    zipped = tmp_path / "P3M-Net_trained_on_P3M-10k.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(r34, "P3M-Net_trained_on_P3M-10k/p3mnet.pth")
        archive.writestr("P3M-Net_trained_on_P3M-10k/README.txt", "unzip to models/pretrained/")
    fake.mirror["p3mnet.zip"] = zipped.read_bytes()
    result = p3m("models", "download", "p3mnet-r34", "--from", fake.url("p3mnet.zip"), "-q")
    assert result.exit_code == 0, result.output
    assert (home / "p3mnet-r34.pth").read_bytes() == r34.read_bytes()
    assert _installed(home)["p3mnet-r34"]["source"] == fake.url("p3mnet.zip")
    assert [r.host for r in fake.requests] == ["127.0.0.1"]                 # a mirror never touches Drive


def test_an_interrupted_download_resumes_where_it_stopped(fake, home, r34):
    data = r34.read_bytes()
    fake.mirror["p3mnet.pth"] = data
    fake.cut, fake.cut_at = 10, len(data) // 2         # every transfer stops half-way: the run gives up
    first = p3m("models", "download", "p3mnet-r34", "--from", fake.url("p3mnet.pth"), "-q")
    assert first.exit_code == 1
    assert "stopped" in first.output and "run the same command again: it resumes" in first.output
    assert _installed(home) == {}
    partial = list((home / "downloads").iterdir())
    assert len(partial) == 1
    kept = partial[0].stat().st_size
    assert 0 < kept <= len(data) // 2

    fake.cut, fake.requests[:] = 0, []
    second = p3m("models", "download", "p3mnet-r34", "--from", fake.url("p3mnet.pth"), "-q")
    assert second.exit_code == 0, second.output
    assert fake.ranges() == [f"bytes={kept}-"]                    # only what was missing was sent again
    assert (home / "p3mnet-r34.pth").read_bytes() == data
    assert _leftovers(home) == ["p3mnet-r34.pth"]


def test_a_corrupt_download_is_refused_and_nothing_is_installed(fake, home, r34):
    fake.mirror["p3mnet.pth"] = r34.read_bytes()[: r34.stat().st_size * 3 // 4]
    result = p3m("models", "download", "p3mnet-r34", "--from", fake.url("p3mnet.pth"), "-q")
    assert result.exit_code == 1
    assert "p3mnet-r34 refused, nothing installed" in result.output and "truncated or corrupted" in result.output
    assert _installed(home) == {} and _leftovers(home) == []        # the refused file is not kept for a resume


def test_weights_of_another_variant_are_refused_and_the_source_file_kept(home, r34):
    result = p3m("models", "download", "p3mnet-vitae-s", "--from", r34)
    assert result.exit_code == 1
    assert "a P3M-Net ResNet-34 checkpoint, not p3mnet-vitae-s" in result.output
    assert "p3m models download p3mnet-r34 --from FILE" in result.output
    assert _installed(home) == {} and _leftovers(home) == [] and r34.is_file()


def test_a_missing_mirror_file_is_one_line(fake, home):
    result = p3m("models", "download", "p3mnet-r34", "--from", fake.url("nothing.pth"), "-q")
    assert result.exit_code == 1 and "HTTP 404" in result.output and "Traceback" not in result.output


def test_cutout_with_model_auto_uses_the_installed_p3mnet(home, r34, tmp_path):
    store.install(entry("p3mnet-r34"), r34, "not checked here: the tests above check downloads", "a test")
    clip = write_clip(tmp_path / "in.mp4", frames=3, audio=False)
    result = p3m("cutout", clip, "-o", tmp_path / "out.mp4", "--infer-size", "64", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "--model auto: p3mnet-r34, the P3M-Net installed" in result.output
    assert "P3M-Net" in result.output.split("--model auto:")[1]      # the job then runs it
    assert (tmp_path / "out.mp4").stat().st_size > 0
