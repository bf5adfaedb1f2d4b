"""Typed settings: frozen dataclasses filled from defaults, a YAML file, then overrides; every bad value is
reported with its field's name. The cut-out, live and training configurations are all built on it."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from model.errors import P3MError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"   # the YAML presets of every job
S = TypeVar("S", bound="Settings")
_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str}


class ConfigError(P3MError):
    """A configuration field is unknown or has an invalid value."""


@dataclass(frozen=True)
class Settings:
    """Base of a settings dataclass: fields are checked against their annotation (int, float, bool, str,
    tuple[int, ...], optionally `| None`), `CHOICES` and `RANGES`; `Error` is the exception raised."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {}
    PRESETS_DIR: ClassVar[Path | None] = None
    Error: ClassVar[type[ConfigError]] = ConfigError

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, self._checked(f.name, getattr(self, f.name), str(f.type)))

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed (validated like the original)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise self.Error(f"unknown option(s): {', '.join(unknown)}", f"valid options: {self.field_names()}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls: type[S], path: str | Path | None = None, **overrides: Any) -> S:
        """Defaults, then the YAML file (a path or a preset name), then the overrides that are not None."""
        config = cls()
        if path is not None:
            try:
                config = config.replace(**cls.read_yaml(path))
            except ConfigError as e:
                raise cls.Error(f"{path}: {e.message}", e.hint) from None
        return config.replace(**{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def read_yaml(cls, path: str | Path) -> dict[str, Any]:
        """A YAML mapping from a file, or from `PRESETS_DIR/<name>.yaml` when `path` names a preset."""
        p = Path(path)
        preset = cls.PRESETS_DIR / f"{path}.yaml" if cls.PRESETS_DIR else None
        if not p.exists() and preset is not None and preset.exists():
            p = preset
        if not p.is_file():
            names = ", ".join(cls.presets())
            raise cls.Error(f"config file not found: {path}",
                            f"give a YAML file or a preset name ({names})" if names else "give a YAML file")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise cls.Error(f"{p}: not valid YAML ({str(e).splitlines()[0]})", "fix the file's syntax") from None
        if not isinstance(data, dict):
            raise cls.Error(f"{p}: expected a mapping of option: value", f"valid options: {cls.field_names()}")
        return {str(k).replace("-", "_"): v for k, v in data.items()}

    @classmethod
    def presets(cls) -> list[str]:
        """The preset names in PRESETS_DIR that this kind of settings reads."""
        return sorted(q.stem for q in cls.PRESETS_DIR.glob("*.yaml")) if cls.PRESETS_DIR else []

    @classmethod
    def field_names(cls) -> str:
        return ", ".join(f.name for f in fields(cls))

    def _checked(self, name: str, value: Any, annotation: str) -> Any:
        """`value` converted and validated for the field `name` (annotations are strings here)."""
        if value is None and "None" in annotation:
            return None
        base = annotation.split(" | ")[0]
        if base.startswith("tuple"):
            if not (isinstance(value, (list, tuple)) and all(_is(v, "int") for v in value)):
                raise self.Error(f"{name}: expected a list of integers, got {value!r}", f"e.g. {name}: [512, 768]")
            return tuple(value)
        if base == "float" and isinstance(value, str):
            try:
                value = float(value)       # YAML 1.1 reads 1e-5 (no dot) as text
            except ValueError:
                pass
        if not _is(value, base):
            raise self.Error(f"{name}: expected {base}, got {value!r}", f"set {name} to a {base} value")
        if base == "float":
            value = float(value)
        if name in self.CHOICES and value not in self.CHOICES[name]:
            raise self.Error(f"{name}: {value!r} is not one of {', '.join(self.CHOICES[name])}", f"pick one for {name}")
        if name in self.RANGES:
            lo, hi = self.RANGES[name]
            if not lo <= value <= hi:
                raise self.Error(f"{name}: {value} is outside [{lo:g}, {hi:g}]", f"choose {name} in that range")
        return value


def _is(value: Any, base: str) -> bool:
    """isinstance by annotation name; a bool is not an int or a float here."""
    return isinstance(value, _TYPES[base]) and not (base != "bool" and isinstance(value, bool))
