"""One configuration mechanism for every trainer and bench script: a dataclass whose fields carry
their help, preset files of overrides (``params/train/<what>-<preset>.yaml``, as nanoGPT's config
files), and ``--set key=value`` overrides on top.

    cfg = build(SRTrainConfig, "sr", preset="smoke", overrides=["steps_sr=10", "lr_sr=1e-4"])

Field names follow one convention: ``steps_*`` (optimizer steps of a stage), ``lr_*`` (its peak
learning rate), ``batch_*`` (its batch size). Values are checked before any work starts: unknown
keys, wrong types and out-of-range numbers are a ``ConfigError`` naming the valid choices.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from .errors import ConfigError
from .runtime import MAX_SEED

T = TypeVar("T")

#: Where preset files live (relative to the project root).
PRESET_DIR = "params/train"


def option(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its help text (shown by ``--help`` and in the manifests' docs)."""
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


def fields_help(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) of every field of a config dataclass."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return out


def help_text(cls: type) -> str:
    """Every field with its default and help, for an argparse epilog."""
    import textwrap
    lines = [f"settings ({cls.__name__}; override with --set key=value):"]
    for name, kind, default, text in fields_help(cls):
        lines.append(f"  {name} ({kind}, default {default!r})")
        if text:
            lines += textwrap.wrap(text, 96, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def presets(what: str) -> list[str]:
    """The preset names available for a trainer (files ``params/train/<what>-<name>.yaml``)."""
    from .paths import resolve
    return sorted(p.stem.split("-", 1)[1] for p in resolve(PRESET_DIR).glob(f"{what}-*.yaml"))


def preset_path(what: str, preset: str) -> Path:
    """A preset's file: a name (``params/train/<what>-<name>.yaml``) or a path to a YAML file."""
    from .paths import locate, resolve
    p = Path(preset)
    if p.suffix in (".yaml", ".yml"):
        if locate(p).exists() and not locate(p).is_file():
            from .imageio import kind_of
            raise ConfigError(f"preset file {preset} is not a regular file ({kind_of(locate(p))}); give a YAML file")
        if not locate(p).is_file():
            raise ConfigError(f"preset file {preset} not found (looked in the current folder and the project root); "
                              f"give a YAML file or one of: {', '.join(presets(what))}")
        return locate(p)
    path = resolve(PRESET_DIR) / f"{what}-{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {preset!r} for {what}; choose one of: {', '.join(presets(what))} "
                          f"(files in {PRESET_DIR}/), or give a YAML file")
    return path


def load_preset(what: str, preset: str | None) -> dict[str, Any]:
    """The overrides a preset file holds (``{}`` for none)."""
    if preset is None:
        return {}
    import yaml
    path = preset_path(what, preset)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset is a mapping of field: value, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["steps_sr=10", "variants=[l2]"]`` -> ``{"steps_sr": 10, "variants": ["l2"]}`` (values read as YAML)."""
    import yaml
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote it") from None
    return out


def build(cls: type[T], what: str, preset: str | None = None, overrides: Mapping[str, Any] | Iterable[str] = (),
          **fixed: Any) -> T:
    """``cls`` from its defaults, then the preset file's values, then ``overrides``
    (``key=value`` strings or a mapping), then ``fixed``; every value checked (``check``)."""
    values = dict(load_preset(what, preset))
    values.update(overrides if isinstance(overrides, Mapping) else parse_overrides(overrides))
    values.update(fixed)
    return replace_checked(cls(), values)


def replace_checked(cfg: T, values: Mapping[str, Any]) -> T:
    """``dataclasses.replace`` with every value type-checked and the result ``check``-ed."""
    cls = type(cfg)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in hints]
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; valid: {', '.join(names)}")
    coerced = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    return check(dataclasses.replace(cfg, **coerced))  # type: ignore[type-var]


def check(cfg: T) -> T:
    """Range checks by naming convention (``steps_*`` >= 0, ``batch_*`` >= 1, ``lr_*`` > 0 and finite,
    ``seed`` in 0 .. 2^32-1, what numpy and torch accept), then the class's own ``validate()`` if it has one."""
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        v = getattr(cfg, f.name)
        if isinstance(v, bool) or v is None:
            continue
        if f.name.startswith("steps_") and (not isinstance(v, int) or v < 0):
            raise ConfigError(f"{f.name} must be a whole number >= 0, got {v!r}")
        if f.name.startswith("batch_") and (not isinstance(v, int) or v < 1):
            raise ConfigError(f"{f.name} must be a whole number >= 1, got {v!r}")
        if f.name == "seed" and (not isinstance(v, int) or not 0 <= v <= MAX_SEED):
            raise ConfigError(f"seed must be a whole number from 0 to 2^32-1, got {v!r}")
        if f.name.startswith("lr_") and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{f.name} must be a positive number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{f.name} must be a finite number, got {v!r}")
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def require_whole(cfg: Any, names: Iterable[str], least: int = 1) -> None:
    """A ``ConfigError`` unless each named field is a whole number >= ``least``."""
    for name in names:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ConfigError(f"{name} must be a whole number >= {least}, got {v!r}")


def require_share(cfg: Any, names: Iterable[str]) -> None:
    """A ``ConfigError`` unless each named field is a share in [0, 1]."""
    for name in names:
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ConfigError(f"{name} is a share, in [0, 1]; got {getattr(cfg, name)!r}")


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def _coerce(name: str, value: Any, t: Any) -> Any:
    """``value`` as a value of type ``t`` (int, float, str, bool, list[...], tuple, Optional[...])."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Union or str(origin) == "types.UnionType":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    base = origin or t
    bad = ConfigError(f"{name} must be {_type_name(t)}, got {value!r}")
    if base is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if base in (int, float) and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = base(value)
        except ValueError:
            raise bad from None
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if base is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad
        return str(value)
    if base in (list, tuple):
        if isinstance(value, str):
            value = [x.strip() for x in value.split(",") if x.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad
        if args and args[0] is not Ellipsis:
            value = [_coerce(name, x, args[0]) for x in value]
        return base(value)
    return value
