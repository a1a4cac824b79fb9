from dataclasses import dataclass, field

import pytest

from asd_tools.config import ConfigError, from_dict
from asd_tools.detect import DetectConfig


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


def test_bad_enum_values_are_errors():
    with pytest.raises(ConfigError, match="detectors: 'svm' is not one of"):
        from_dict(DetectConfig, {"detectors": ["svm"]})
