"""Strict YAML configs backed by dataclass schemas: defaults live in the schema only.

A config may be written as a difference from another: a top-level ``base: <file>`` (relative to
the config's folder) names the config it starts from, and its own keys are deep-merged onto it
(mappings key by key, anything else replaced); bases may have bases. ``read_config`` does this,
and every config is read through it.

A key that no schema field reads is an error naming the key and the valid ones; so is a number
outside the range its schema declares (``RANGES``: every numeric key has one, e.g. ``epochs`` >= 1),
named with its value and that range; so is a
missing section that a schema lists in ``REQUIRED_SECTIONS`` (an empty file would otherwise
run the schema's defaults: for System 1 and DG-Mix the original full-size GPU recipe). The
resolved config (bases merged, every default filled in, no ``base`` key) is saved into the
experiment folder and later stages read that copy.
"""

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from asd_tools.utils import atomic_write_text


class ConfigError(ValueError):
    """A config file with an unknown key, a wrong type or a bad value."""


@dataclass(frozen=True)
class Range:
    """The numbers a config key accepts: from ``low`` to ``high``, either end excluded when open.

    A schema declares one per numeric key in its class attribute ``RANGES`` ({field: Range}); for a
    list of numbers (e.g. ``save_epochs``) each element must lie in it. ``from_dict`` checks them, so
    an impossible value (``epochs: 0``, ``batch_size: -4``) stops at load with one line naming the
    key, rather than later inside torch with a message that names none.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_0 = Range(0)  # counts and seeds; 0 often means "off"
AT_LEAST_1 = Range(1)  # epochs, sizes, intervals
POSITIVE = Range(0, low_open=True)  # Beta parameters, frequencies
FRACTION = Range(0, 1)  # shares and ratios, ends included


def check_range(value, allowed: Range, where: str) -> None:
    """``value`` (a number, a list of numbers or None) within ``allowed``, else one line naming the key."""
    for item in value if isinstance(value, list) else [value]:
        if item is not None and item not in allowed:
            shown = f"{value!r}" if item is value else f"{item!r} in {value!r}"
            raise ConfigError(f"{where}: {shown} is out of range; allowed: {allowed}")


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
            if name in getattr(cls, "RANGES", {}):
                check_range(kwargs[name], cls.RANGES[name], f"{where}.{name}")
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


BASE_KEY = "base"


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: PyYAML keeps
    the last value silently, so an edit above a forgotten duplicate would have no effect."""

    def construct_mapping(self, node, deep=False):
        lines = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in lines:
                raise ConfigError(
                    f"{key_node.start_mark.name}: key '{key}' is given twice in one mapping, on lines {lines[key]} "
                    f"and {line}; keep one of them"
                )
            lines[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(path):
    """The data of YAML file ``path``; a syntax error or a repeated key is one line naming the file and line."""
    with open(path) as f:
        try:
            return yaml.load(f, Loader=StrictLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
            context = f" ({err.context}, line {err.context_mark.line + 1})" if err.context and err.context_mark else ""
            raise ConfigError(f"{path}: not valid YAML at {where}: {err.problem}{context}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None


def read_config(path):
    """The YAML config at ``path`` as plain data, its ``base:`` chain merged in (no ``base`` key left).

    Errors name the files involved: a missing base, a base that leads back to itself, an empty
    section that would wipe out its base's section.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {path} does not exist")
    return _resolve(path, chain=())


def _resolve(path: Path, chain: tuple):
    """``path``'s data merged onto its base's; ``chain``: the configs that led here (cycle detection)."""
    if path.resolve() in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"config bases form a cycle: {cycle}; remove or change one of these '{BASE_KEY}:' lines")
    data = load_yaml(path)
    if not isinstance(data, dict) or BASE_KEY not in data:
        return data
    data = dict(data)
    base_path = _base_path(path, data.pop(BASE_KEY))
    base = _resolve(base_path, (*chain, path))
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: its base {base_path} holds no sections (an empty file, or not a mapping)")
    return deep_merge(base, data, where=str(path))


def _base_path(path: Path, name) -> Path:
    """The file that ``path``'s ``base: name`` refers to (relative to ``path``'s folder), which must exist."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: '{BASE_KEY}:' must name a config file, e.g. '{BASE_KEY}: asd_model.cpu.yaml'")
    base_path = path.parent / name
    if not base_path.is_file():
        raise ConfigError(
            f"{path}: its base {base_path} does not exist; '{BASE_KEY}:' names a file relative to the "
            f"config's own folder ({path.parent}), e.g. '{BASE_KEY}: asd_model.cpu.yaml'"
        )
    return base_path


def deep_merge(base: dict, override: dict, where="config") -> dict:
    """``override`` merged onto ``base`` (neither is changed): mappings merge key by key, anything else replaces.

    An override of None for a mapping is an error: an empty section (``train:`` with every key
    commented out) would otherwise drop the base's whole section and run the schema's defaults.
    """
    merged = dict(base)
    for key, value in override.items():
        inherited = merged.get(key)
        if isinstance(inherited, dict) and value is None:
            raise ConfigError(
                f"{where}.{key} is empty: it would replace the base's whole '{key}' mapping; "
                "state the keys to change, or delete the line to keep the base's"
            )
        if isinstance(inherited, dict) and isinstance(value, dict):
            merged[key] = deep_merge(inherited, value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def set_keys(data: dict, values: dict, where="config") -> dict:
    """A copy of config ``data`` with ``values`` ({"section.key": value}) set; each key's section must exist."""
    data = dict(data)
    for dotted, value in values.items():
        *sections, key = dotted.split(".")
        node = data
        for i, name in enumerate(sections):
            if not isinstance(node.get(name), dict):
                raise ConfigError(f"{where}: has no section '{'.'.join(sections[: i + 1])}' to set '{dotted}' in")
            node[name] = dict(node[name])  # copied on the way down: the caller's data is never changed
            node = node[name]
        node[key] = value
    return data


def write_derived_config(path, values: dict, out_path) -> Path:
    """Write ``path``'s config (bases merged) with ``values`` set to ``out_path``: e.g. one seed of a config."""
    data = set_keys(read_config(path), values, where=str(path))
    atomic_write_text(out_path, yaml.safe_dump(data, sort_keys=False))
    return Path(out_path)


def load_config(path, cls):
    """Read a YAML config (its bases merged, see ``read_config``) into schema ``cls``; errors name the file and key."""
    return from_dict(cls, read_config(path), where=str(path))


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
