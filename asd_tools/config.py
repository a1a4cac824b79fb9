"""Strict YAML configs backed by dataclass schemas: defaults live in the schema only.

A key that no schema field reads is an error naming the key and the valid ones; so is a
missing section that a schema lists in ``REQUIRED_SECTIONS`` (an empty file would otherwise
run the schema's defaults: for System 1 and DG-Mix the original full-size GPU recipe). The
resolved config (every default filled in) is saved into the experiment folder and later stages
read that copy.
"""

import dataclasses
import inspect
import typing
from pathlib import Path

import yaml

from asd_tools.utils import atomic_write_text


class ConfigError(ValueError):
    """A config file with an unknown key, a wrong type or a bad value."""


def from_dict(cls, data, where="config"):
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclasses."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {names}")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        kind, value = hints[name], data[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = from_dict(kind, value, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(value, kind, f"{where}.{name}")
    required = getattr(cls, "REQUIRED_SECTIONS", ())
    missing = [name for name in required if name not in data]
    if missing:
        what = "is empty (or all comments)" if not data else f"has no section(s) {missing}"
        raise ConfigError(
            f"{where} {what}: a config must state at least {list(required)} (else the built-in defaults "
            "would run unnoticed); start from one in conf/tuning/"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_type(value, kind, where):
    origin = typing.get_origin(kind) or kind
    if origin is typing.Union:  # Optional[X], Union[X, Y]: the first option the value fits
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        options = [a for a in options if a is not type(None)]
        for option in options:
            try:
                return _check_type(value, option, where)
            except ConfigError:
                if len(options) == 1:
                    raise
        names = " or ".join(getattr(typing.get_origin(a) or a, "__name__", str(a)) for a in options)
        raise ConfigError(f"{where}: expected {names}, got {value!r}")
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        return list(value)
    if origin is typing.Any or isinstance(value, origin):
        if origin is int and isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    raise ConfigError(f"{where}: expected {getattr(origin, '__name__', origin)}, got {value!r}")


def load_config(path, cls):
    """Read a YAML file into schema ``cls``; errors name the file and the key."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {path} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f)
    try:
        return from_dict(cls, data, where=str(path))
    except ConfigError:
        raise


def config_to_dict(config) -> dict:
    return dataclasses.asdict(config)


def config_sections(config, names) -> dict:
    """The named top-level sections of a config as plain dicts (what a stage's provenance record holds)."""
    resolved = config_to_dict(config)
    return {name: resolved[name] for name in names}


def save_config(config, path) -> None:
    """Save the resolved config (all defaults filled in) as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def check_params(params: dict, target, where: str, name: str, supplied=()):
    """Validate inside ``__post_init__`` the keyword arguments that a config passes to ``target``.

    ``supplied``: arguments the code passes itself, which a config may not set.
    """
    parameters = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return  # takes any keyword: only the call can tell
    accepted = sorted({p.name for p in parameters if p.kind is not p.VAR_POSITIONAL} - {"self", *supplied})
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for '{name}'; valid keys are {accepted}")


def choice(value, options, name):
    """Validate an enumerated option inside ``__post_init__``."""
    if value not in options:
        raise ValueError(f"{name}: '{value}' is not one of {list(options)}")
