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
MAX_YAML_BYTES = 64 * 1024      # a preset is a few dozen lines; anything larger is not one
S = TypeVar("S", bound="Settings")
_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str}


class ConfigError(P3MError):
    """A configuration field is unknown or has an invalid value."""


class RefusedYAML(yaml.YAMLError):
    """Valid YAML that a configuration may not use (aliases, a repeated key, too much text)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (`*name`: nested ones expand a few lines into gigabytes, a "billion
    laughs") and a key given twice in one mapping (the second would silently win)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise RefusedYAML(f"line {event.start_mark.line + 1}: aliases (*{event.anchor}) are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue                  # an odd key (a list...): SafeLoader's own checks report it
            if key in seen:
                raise RefusedYAML(f"line {key_node.start_mark.line + 1}: {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """YAML from text; RefusedYAML for aliases, a repeated key or over MAX_YAML_BYTES, else yaml.YAMLError."""
    if len(text) > MAX_YAML_BYTES:
        raise RefusedYAML(f"over the {MAX_YAML_BYTES} characters a configuration may have")
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Settings:
    """Base of a settings dataclass: fields are checked against their annotation (int, float, bool, str,
    tuple[int, ...], optionally `| None`), `CHOICES` and `RANGES`; `Error` is the exception raised."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {}
    PRESETS_DIR: ClassVar[Path | None] = None
    COMMAND: ClassVar[str | None] = None   # the command whose presets these are: a preset's `command:` key
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
            values = cls.read_yaml(path)          # its errors name the file already
            command = values.pop("command", None)
            try:
                config = config.replace(**cls.preset_values(values, command))
            except ConfigError as e:
                raise cls.Error(f"{path}: {e.message}", e.hint) from None
        return config.replace(**{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def read_yaml(cls, path: str | Path) -> dict[str, Any]:
        """A YAML mapping from a file, or from `PRESETS_DIR/<name>.yaml` when `path` names a preset."""
        p = Path(path)
        preset = cls.PRESETS_DIR / f"{path}.yaml" if cls.PRESETS_DIR else None
        names = ", ".join(cls.presets())
        choices = f"give a YAML file or a preset name ({names})" if names else "give a YAML file"
        try:
            if not p.exists() and preset is not None and preset.exists():
                p = preset
            if p.is_dir():
                raise cls.Error(f"config {path} is a folder, not a YAML file", choices)
            if p.exists() and not p.is_file():
                raise cls.Error(f"config {path} is not a regular file", choices)
            if not p.is_file():
                raise cls.Error(f"config file not found: {path}", choices)
            with p.open("rb") as f:        # bounded: a huge file (or /dev/zero) is refused, not read whole
                raw = f.read(MAX_YAML_BYTES + 1)
            text = raw.decode("utf-8")
        except OSError as e:
            raise cls.Error(f"cannot read config {path}: {e.strerror or e}",
                            "check the file's permissions (and its folders')") from None
        except UnicodeDecodeError:
            raise cls.Error(f"{p}: not a text file", choices) from None
        try:
            data = load_yaml_text(text) or {}
        except RefusedYAML as e:
            raise cls.Error(f"{p}: refused ({e})", "write each option once, as plain values (no &anchors or "
                            "*aliases)") from None
        except yaml.YAMLError as e:
            raise cls.Error(f"{p}: not valid YAML ({str(e).splitlines()[0]})", "fix the file's syntax") from None
        if not isinstance(data, dict):
            raise cls.Error(f"{p}: expected a mapping of option: value", f"valid options: {cls.field_names()}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name in values:              # `infer-size` and `infer_size` are one option
                raise cls.Error(f"{p}: refused ({name} is given twice, as {key!r} and another spelling)",
                                "write each option once")
            values[name] = value
        return values

    @classmethod
    def preset_values(cls, values: dict[str, Any], command: Any) -> dict[str, Any]:
        """The values of a preset for `command` that these settings take: all of one for this command (or for
        none), refused for another command (subclasses may take what they share with it)."""
        if command is None or command == cls.COMMAND:
            return values
        ours = ", ".join(cls.presets())
        raise cls.Error(f"a preset for `p3m {command}`, not `p3m {cls.COMMAND}`",
                        f"use it with p3m {command}, or give a preset for p3m {cls.COMMAND} ({ours})")

    @classmethod
    def presets(cls) -> list[str]:
        """The preset names in PRESETS_DIR whose `command:` is this kind of settings' COMMAND."""
        if cls.PRESETS_DIR is None:
            return []
        return sorted(q.stem for q in cls.PRESETS_DIR.glob("*.yaml") if preset_command(q) == cls.COMMAND)

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


def preset_command(path: Path) -> str | None:
    """The `command:` a preset file says it is for (None when it says nothing or cannot be read)."""
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data.get("command") if isinstance(data, dict) else None


def _is(value: Any, base: str) -> bool:
    """isinstance by annotation name; a bool is not an int or a float here."""
    return isinstance(value, _TYPES[base]) and not (base != "bool" and isinstance(value, bool))
