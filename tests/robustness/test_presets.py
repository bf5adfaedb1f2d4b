"""Hostile or odd presets (`--config`) and `--set` values: refused at once with one line, never expanded."""
from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from model.cli import _parse_sets
from model.errors import P3MError
from model.settings import MAX_YAML_BYTES
from stream.cli.main import main
from stream.jobs.config import ConfigError, load_config, load_live_config

# Nine levels of nine aliases under a known key: 9**9 (387 million) strings once expanded.
LAUGHS = "\n".join(["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                   + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
                   + ["background: [" + ", ".join(["*a8"] * 9) + "]"]) + "\n"


def test_a_billion_laughs_preset_under_a_known_key_is_refused_before_it_expands(tmp_path):
    preset = tmp_path / "laughs.yaml"
    preset.write_text("background: &a0 [lol, lol, lol]\ninfer_size: [*a0, *a0, *a0]\n")   # known keys only
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_config(preset)
    assert e.value.message == f"{preset}: refused (line 2: aliases (*a0) are not allowed)"
    assert "aliases" in e.value.hint
    preset.write_text(LAUGHS)
    with pytest.raises(ConfigError, match=r"aliases \(\*a0\) are not allowed"):
        load_live_config(preset)
    assert time.monotonic() - started < 5      # refused, not expanded (expanding takes minutes and GBs)


def test_a_key_given_twice_is_refused_naming_it(tmp_path):
    preset = tmp_path / "twice.yaml"
    preset.write_text("infer_size: 256\nbackground: blur\ninfer_size: 512\n")
    with pytest.raises(ConfigError) as e:
        load_config(preset)
    assert e.value.message == f"{preset}: refused (line 3: 'infer_size' is given twice)"
    preset.write_text("infer_size: 256\ninfer-size: 512\n")        # one option in two spellings
    with pytest.raises(ConfigError, match="infer_size is given twice"):
        load_config(preset)


def test_a_folder_a_device_or_a_huge_file_as_config_are_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a YAML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="/dev/zero is not a regular file"):
        load_config("/dev/zero")
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match=f"over the {MAX_YAML_BYTES} characters"):
        load_config(huge)


def test_an_unreadable_config_is_one_clear_line(tmp_path, monkeypatch):
    # Root reads anything, so the denied read is simulated where the file is opened.
    preset = tmp_path / "locked.yaml"
    preset.write_text("infer_size: 256\n")

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    result = CliRunner().invoke(main, ["cutout", "in.mp4", "-o", str(tmp_path / "out.mp4"), "-c", str(preset)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"error: cannot read config {preset}: Permission denied"


def test_set_values_refuse_aliases_too():
    with pytest.raises(P3MError, match="not valid YAML"):
        _parse_sets(("crop_sizes=[&a [1, 1, 1], *a, *a]",))
    assert _parse_sets(("crop_sizes=[256, 384]",)) == {"crop_sizes": [256, 384]}


def test_an_unreadable_config_folder_is_named_and_the_bundled_model_runs(monkeypatch, caplog):
    # `--model auto` looks for old weights under ~/.config; an unreadable folder raised PermissionError
    # ("internal error"). Root reads anything, so the denied look is simulated where it happens.
    from model.matters import auto

    class Unreadable(type(Path())):
        def is_file(self) -> bool:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(auto.store, "legacy_weights_path", lambda: Unreadable("/home/u/.config/p3m-stream/p3mnet.pth"))
    assert auto.choose(None) == ("mediapipe", None)
    assert ("cannot look for weights at /home/u/.config/p3m-stream/p3mnet.pth (Permission denied); using the "
            "bundled model") in caplog.text
