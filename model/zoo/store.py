"""Where installed models live and what is installed: one folder (the user's data directory, or $P3M_HOME)
holding each model's file and `installed.json`, the record of what was installed, from where, with its sha256.

Torch-free: `--model auto` asks it what is installed before anything heavy loads.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from platformdirs import user_data_dir

from model.bundled import ASSETS
from model.errors import P3MError
from model.zoo.catalog import CATALOG, ModelEntry, entry

MANIFEST = "installed.json"
DOWNLOADS = "downloads"      # partial downloads, kept so that the same command resumes them


@dataclass(frozen=True)
class Installed:
    """What `installed.json` says about one installed model."""

    name: str
    file: str          # inside models_dir()
    sha256: str
    bytes: int
    source: str
    installed_at: str


def home() -> Path:
    """$P3M_HOME, else the user's data directory for p3m-stream (e.g. ~/.local/share/p3m-stream); never the package."""
    return Path(os.environ.get("P3M_HOME") or user_data_dir("p3m-stream", appauthor=False)).expanduser()


def legacy_weights_path() -> Path:
    """Where P3M-Net weights were put before `p3m models`: $XDG_CONFIG_HOME (or ~/.config)/p3m-stream/p3mnet.pth.
    `--model auto` still uses a file there when no P3M-Net is installed."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "p3m-stream" / "p3mnet.pth"


def models_dir() -> Path:
    return home() / "models"


def downloads_dir() -> Path:
    return models_dir() / DOWNLOADS


def installed() -> dict[str, Installed]:
    """Installed models by name: those recorded in the manifest whose file is still there."""
    records = _read_manifest()
    return {name: rec for name, rec in records.items() if (models_dir() / rec.file).is_file()}


def installed_path(name: str) -> Path | None:
    """The installed file of model `name`, or None; a bundled model's file in the package."""
    found = entry(name)
    if found.bundled_file is not None:
        return ASSETS / found.bundled_file
    record = installed().get(name)
    return models_dir() / record.file if record is not None else None


def install(model: ModelEntry, checked: Path, sha256: str, source: str) -> Path:
    """Copy the checked file into place under a temporary name, rename it, then record it: a model is either
    installed whole and recorded, or not at all."""
    target_dir = models_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{model.name}{_suffix(checked)}"
    tmp = target_dir / f".{model.name}.{os.getpid()}.tmp"     # copyfile creates it with the user's umask
    try:
        shutil.copyfile(checked, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in target_dir.glob(f"{model.name}.*"):       # an earlier install in the other format
        if old != target and old.suffix in (".pth", ".safetensors"):
            old.unlink()
    record = Installed(model.name, target.name, sha256, target.stat().st_size, source,
                       time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _write_manifest({**_read_manifest(), model.name: record})
    return target


def remove(model: ModelEntry) -> Path:
    """Delete an installed model's file and its record; P3MError when it is bundled or not installed."""
    if model.bundled_file is not None:
        raise P3MError(f"{model.name} is bundled with p3m-stream and cannot be removed",
                       "it takes no space outside the package")
    records = _read_manifest()
    record = records.pop(model.name, None)
    if record is None:
        raise P3MError(f"{model.name} is not installed", "`p3m models list` shows what is")
    path = models_dir() / record.file
    path.unlink(missing_ok=True)
    _write_manifest(records)
    return path


def _suffix(path: Path) -> str:
    return ".safetensors" if path.suffix == ".safetensors" else ".pth"


def _read_manifest() -> dict[str, Installed]:
    path = models_dir() / MANIFEST
    try:
        raw = json.loads(path.read_text())
        return {name: Installed(**fields) for name, fields in raw.items() if name in _KNOWN}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as e:
        raise P3MError(f"cannot read the record of installed models {path}: {e}",
                       "delete that file and download the models again") from None


def _write_manifest(records: dict[str, Installed]) -> None:
    path = models_dir() / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({name: asdict(rec) for name, rec in sorted(records.items())}, indent=2) + "\n")
    os.replace(tmp, path)           # a reader sees the old record or the new one, never half of one


_KNOWN = {e.name for e in CATALOG}
