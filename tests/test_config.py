import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import pytest
import yaml

from asd_tools.baseline_config import BaselineConfig
from asd_tools.config import ConfigError, from_dict, load_config
from asd_tools.detect import DetectConfig
from asd_tools.dgmix.config import DGMixConfig
from asd_tools.serial_oe.config import SerialOEConfig


@dataclass
class Inner:
    rate: float = 0.1


@dataclass
class Outer:
    name: str = "x"
    epochs: int = 3
    inner: Inner = field(default_factory=Inner)


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"cfg.inner: unknown key\(s\) \['rte'\]; valid keys are \['rate'\]"):
        from_dict(Outer, {"inner": {"rte": 1}}, "cfg")


def test_types_are_checked_and_ints_widen_to_floats():
    assert from_dict(Outer, {"inner": {"rate": 1}}).inner.rate == 1.0
    with pytest.raises(ConfigError, match="cfg.epochs: expected int"):
        from_dict(Outer, {"epochs": "three"}, "cfg")
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Outer, {"epochs": True})


@dataclass
class EitherForm:
    items: Union[List[str], Dict[str, dict]] = field(default_factory=list)
    limit: Optional[int] = None


def test_a_union_takes_the_first_option_the_value_fits():
    assert from_dict(EitherForm, {"items": ["a"]}).items == ["a"]
    assert from_dict(EitherForm, {"items": {"a": {}}}).items == {"a": {}}
    with pytest.raises(ConfigError, match="cfg.items: expected list or dict, got 'a'"):
        from_dict(EitherForm, {"items": "a"}, "cfg")
    assert from_dict(EitherForm, {"limit": None}).limit is None
    with pytest.raises(ConfigError, match="cfg.limit: expected int, got 'x'"):  # an Optional's error as before
        from_dict(EitherForm, {"limit": "x"}, "cfg")


def test_bad_enum_values_are_errors():
    with pytest.raises(ConfigError, match="detectors: 'svm' is not one of"):
        from_dict(DetectConfig, {"detectors": ["svm"]})


CONF = Path(__file__).resolve().parents[1] / "scripts" / "conf" / "tuning"
SCHEMAS = {"asd_model": SerialOEConfig, "dgmix": DGMixConfig, "baseline": BaselineConfig}


def schema_of(path):
    return SCHEMAS[path.name.split(".")[0]]


def _edited_copy(tmp_path, name, edit):
    """A shipped config with ``edit(data)`` applied, written to ``tmp_path``."""
    data = yaml.safe_load((CONF / name).read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_config_loads():
    files = sorted(CONF.glob("*.yaml"))
    assert {p.name.split(".")[0] for p in files} == set(SCHEMAS)
    for path in files:
        load_config(path, schema_of(path))


@pytest.mark.parametrize(
    "schema, sections",
    [
        (SerialOEConfig, ["model", "train"]),
        (DGMixConfig, ["model", "pretrain", "finetune"]),
        (BaselineConfig, ["logmel", "detect"]),
    ],
)
@pytest.mark.parametrize("text", ["", "# only comments\n\n# here\n"], ids=["empty", "comments"])
def test_an_empty_config_is_refused_rather_than_running_the_defaults(tmp_path, schema, sections, text):
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=re.escape(f"{path} is empty (or all comments): a config must state at least {sections}")
    ):
        load_config(path, schema)


@pytest.mark.parametrize("name", ["asd_model.tiny.yaml", "dgmix.tiny.yaml", "baseline.yaml"])
def test_a_config_without_a_required_section_names_the_file_and_the_section(tmp_path, name):
    dropped = schema_of(CONF / name).REQUIRED_SECTIONS[-1]
    path = _edited_copy(tmp_path, name, lambda data: data.pop(dropped))
    with pytest.raises(ConfigError, match=re.escape(f"{path} has no section(s) ['{dropped}']")):
        load_config(path, schema_of(path))


@pytest.mark.parametrize(
    "name, section, key, typo, optimiser",
    [
        ("asd_model.tiny.yaml", "train", "optimizer_params", "weight_decya", "adamw"),
        ("asd_model.tiny.yaml", "train", "scheduler_params", "pct_strat", "onecycle"),
        ("dgmix.tiny.yaml", "pretrain", "optimizer_params", "trust_coef", "lars"),
        ("dgmix.tiny.yaml", "finetune", "optimizer_params", "momentum", "adamw"),
    ],
)
def test_unknown_optimiser_and_scheduler_parameters_fail_at_load(tmp_path, name, section, key, typo, optimiser):
    path = _edited_copy(tmp_path, name, lambda data: data[section][key].update({typo: 0.1}))
    with pytest.raises(ConfigError) as err:
        load_config(path, schema_of(path))
    # the file, the section, the key, the unknown name and the valid ones
    assert str(err.value).startswith(f"{path}.{section}: ")
    assert f"{key}: unknown key(s) ['{typo}'] for '{optimiser}'; valid keys are [" in str(err.value)
    assert "_lr'" in str(err.value) or "'lr'" in str(err.value)
