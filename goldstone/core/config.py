"""Experiment configs: dataclasses whose fields carry help, choices and bounds.

`resolve_config` merges a TOML file and ``key=value`` overrides into a config and checks every
key, type and range, raising a one-line `ConfigError` that names the key at fault.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from goldstone.core.errors import ConfigError


def param(default: Any, help: str = "", *, label: str | None = None, critical: float | None = None,
          choices: tuple | None = None, gt: float | None = None, ge: float | None = None, le: float | None = None,
          when: Mapping[str, tuple] | None = None) -> Any:
    """A config field with its documentation and the values it accepts.

    `label`: the key in words, with units, for reports (e.g. "weight scale σ_W"); `critical`: the
    theory's critical value of the key, drawn on every phase diagram with the key on an axis.
    `when` = ``{"group": ("ok", "generic")}``: the key applies only when key ``group`` takes one of
    those values (reports and `goldstone show` leave it out otherwise).
    """
    return dataclasses.field(default=default, metadata={"help": help, "label": label, "critical": critical,
                                                        "choices": choices, "gt": gt, "ge": ge, "le": le,
                                                        "when": dict(when) if when else None})


def _field_types(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _closest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.0)
    return f"; closest valid key: {match[0]!r}" if match else ""


def _convert(key: str, raw: Any, kind: type) -> Any:
    """Turn `raw` (a CLI string or a TOML value) into `kind`, or say which key wants what."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "")):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    name = getattr(kind, "__name__", str(kind))
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "false", "0", "no"):
                return raw.lower() in ("true", "1", "yes")
            raise ValueError
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind is str:
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                raise ValueError
            return str(raw)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"key {key!r} expects {name}, got {raw!r}")


def _check_bounds(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    if value is None:
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"key {key!r} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    for bound, ok, words in (("gt", lambda v, b: v > b, "> "), ("ge", lambda v, b: v >= b, ">= "),
                             ("le", lambda v, b: v <= b, "<= ")):
        limit = meta.get(bound)
        if limit is not None and not ok(value, limit):
            raise ConfigError(f"key {key!r} must be {words}{limit}; got {value!r}")


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is allowed
    except OSError as err:
        raise ConfigError(f"config file {path}: cannot be read ({err.strerror})") from err
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise ConfigError(f"config file {path}:{line}: not UTF-8 text (byte {err.object[err.start]:#04x})") from err
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: TOML syntax error: {err}") from err


def resolve_config(cls: type, overrides: Mapping[str, Any] | None = None, config_file: str | Path | None = None,
                   experiment: str = "", defaults: Mapping[str, Any] | None = None) -> Any:
    """Field defaults < `defaults` (a stored run's config) < config file < overrides; every key
    checked. Calls ``validate()`` if defined."""
    values: dict[str, Any] = dict(defaults or {})
    if config_file is not None:
        values.update(read_toml(config_file))
    values.update(overrides or {})
    types = _field_types(cls)
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
    where = f" for experiment {experiment!r}" if experiment else ""
    kwargs = {}
    for key, raw in values.items():
        if key not in types:
            raise ConfigError(f"unknown key {key!r}{where}{_closest(key, sorted(types))}")
        kwargs[key] = _convert(key, raw, types[key])
        _check_bounds(key, kwargs[key], meta[key])
    config = cls(**kwargs)
    if hasattr(config, "validate"):
        config.validate()
    return config


def parse_assignments(items: list[str] | None, flag: str = "--set") -> dict[str, str]:
    """``["depth=10", "group=ok"]`` -> ``{"depth": "10", "group": "ok"}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def declared(cls: type, name: str) -> dict[str, Any]:
    """``{key: param(name=...)}`` for the keys of config class `cls` that set `name` (label, critical, when)."""
    return {f.name: f.metadata[name] for f in dataclasses.fields(cls) if f.metadata.get(name) is not None}


def applicable(config: Mapping[str, Any], when: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The keys of a stored `config` that apply to it; `when` is ``declared(cls, "when")`` (see `param`)."""
    return {key: value for key, value in config.items()
            if all(config.get(other) in allowed for other, allowed in when.get(key, {}).items())}


def _range_text(meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return " | ".join(map(str, meta["choices"]))
    low = f"> {meta['gt']:g}" if meta.get("gt") is not None else f">= {meta['ge']:g}" if meta.get("ge") is not None else ""
    high = f"<= {meta['le']:g}" if meta.get("le") is not None else ""
    return ", ".join(p for p in (low, high) if p)


def _when_text(when: Mapping[str, tuple]) -> str:
    return "; ".join(f"only when {key} is {' or '.join(map(str, values))}" for key, values in when.items())


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    default: Any
    range: str
    help: str


def describe_fields(cls: type) -> list[FieldInfo]:
    """Name, type, default, accepted range and help of every key, for `goldstone show`."""
    types = _field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = types[f.name]
        name = getattr(kind, "__name__", str(kind)).replace("typing.", "")
        help_text = "; ".join(p for p in (f.metadata.get("help", ""), _when_text(f.metadata.get("when") or {})) if p)
        out.append(FieldInfo(f.name, name, f.default, _range_text(f.metadata), help_text))
    return out
