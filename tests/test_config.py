import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

import pytest
import yaml

from asd_tools.backend.detect import DetectConfig
from asd_tools.config import (
    ConfigError,
    config_to_dict,
    deep_merge,
    from_dict,
    load_config,
    read_config,
    save_config,
    set_keys,
)
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.dcase_ae.config import DcaseAEConfig
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.registry import system_for_config
from asd_tools.systems.serial_oe.config import SerialOEConfig
from tests.conftest import CONF, shipped_configs


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


SCHEMAS = {"asd_model": SerialOEConfig, "dgmix": DGMixConfig, "baseline": BaselineConfig, "dcase_ae": DcaseAEConfig}


def schema_of(path):
    return SCHEMAS[path.name.split(".")[0]]


def _edited_copy(tmp_path, name, edit):
    """A shipped config (its bases merged) with ``edit(data)`` applied, written to ``tmp_path``."""
    data = read_config(CONF / name)
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_config_loads():
    files = shipped_configs()
    assert {p.name.split(".")[0] for p in files} == set(SCHEMAS)
    for path in files:
        load_config(path, schema_of(path))


@pytest.mark.parametrize(
    "path",
    sorted(set(CONF.glob("*.yaml")) - set(shipped_configs())) or [None],
    ids=lambda p: getattr(p, "name", "none"),
)
def test_a_users_own_config_in_the_folder_loads(path):
    """A config a user adds to conf/tuning/ (any name) must load with the schema of the system it names."""
    if path is None:
        pytest.skip("no config beside the shipped ones in conf/tuning/")
    system_for_config(path).load_config(path)


def test_shipped_bases_are_shipped_configs_of_the_same_system():
    """A base chain stays inside conf/tuning/ and inside one schema; resolved, no config keeps a ``base`` key."""
    for path in shipped_configs():
        base = yaml.safe_load(path.read_text()).get("base")
        if base is not None:
            assert (CONF / base).is_file() and schema_of(CONF / base) is schema_of(path), path.name
        assert "base" not in read_config(path)


def _dotted(data, key):
    for part in key.split("."):
        data = data[part]
    return data


# What each config written as a difference resolves to: its own keys and keys inherited from its bases.
RESOLVED_VALUES = {
    "asd_model.001.yaml": {
        "train.use_mixup": False,
        "train.mixup_max_step": "actual",
        "model.params.backbone": "tf_efficientnet_b0.ns_jft_in1k",
    },
    "asd_model.003.yaml": {"train.n_target": 1, "train.use_mixup": False, "train.epochs": 300},
    "asd_model.102.yaml": {"model.name": "transformer", "train.n_target": 1, "frontend.hop_length": 512},
    "asd_model.202.yaml": {"model.name": "conformer", "model.params.num_layers": 16, "model.params.ffn_dim": 64},
    "asd_model.domain_classifier.yaml": {
        "model.params.domain_head": True,
        "model.params.backbone": "tf_efficientnet_b0.ns_jft_in1k",
        "train.optimizer_params": {"lr": 1.0e-3, "weight_decay": 0.01},
        "train.target_part": "original_mixed",
    },
    "asd_model.domain_classifier_intended.yaml": {
        "frontend.time_mask": 16,
        "train.batch_size": 32,
        "train.use_mixup": True,
        "train.mixup_max_step": "actual",
        "train.optimizer_params": {"lr": 1.0e-3, "weight_decay": 0.0},
        "train.target_batch_size": 16,
    },
    "asd_model.domain_classifier_tiny.yaml": {
        "model.params.domain_head": True,
        "model.params.backbone": "mobilenetv3_small_050",
        "train.batch_size": 16,
        "train.target_batch_size": 4,
        "detect.ks": [1, 2],
    },
    "asd_model.audioset_v003.yaml": {"train.negatives": "union", "train.n_target": 1, "train.use_mixup": False},
    "asd_model.audioset_balanced.yaml": {
        "train.negatives": "separate",
        "train.n_pos": 48,
        "train.mixup_max_step": "actual",
    },
    "asd_model.cpu_logmel.yaml": {"frontend.log": True, "frontend.n_mels": 64, "train.epochs": 20},
    "dgmix.intended.yaml": {"pretrain.scheduler_never_steps": False, "embed.pool": "mean", "model.final_groups": 320},
    "dgmix.cpu.yaml": {"pretrain.batch_size": 64, "pretrain.exclude_bias_and_norm": True},
    "dgmix.tiny.yaml": {"model.init": "torch", "model.head_relu": False, "pretrain.grad_accum": 2},
}


@pytest.mark.parametrize("name", sorted(RESOLVED_VALUES))
def test_configs_written_as_differences_resolve_to_their_values(name):
    resolved = config_to_dict(load_config(CONF / name, schema_of(CONF / name)))
    assert {key: _dotted(resolved, key) for key in RESOLVED_VALUES[name]} == RESOLVED_VALUES[name]


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


# ------------------------------------------------------------------ base: configs written as differences


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {"train": {"epochs": 300, "optimizer_params": {"lr": 1.0e-3, "weight_decay": 0.0}}, "ks": [1, 2, 4]}
    override = {"train": {"epochs": 20, "optimizer_params": {"weight_decay": 0.01}}, "ks": [1]}
    merged = deep_merge(base, override)
    assert merged == {"train": {"epochs": 20, "optimizer_params": {"lr": 1.0e-3, "weight_decay": 0.01}}, "ks": [1]}
    assert base["train"]["epochs"] == 300 and base["ks"] == [1, 2, 4]  # the base is left alone


def test_a_config_with_a_base_resolves_through_every_level(tmp_path):
    _write(tmp_path, "a.yaml", "model: {params: {backbone: resnet18, dropout: 0.3}}\ntrain: {epochs: 3}\n")
    _write(tmp_path, "b.yaml", "base: a.yaml\nmodel: {params: {dropout: 0.1}}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    child = _write(sub, "c.yaml", "base: ../b.yaml  # relative to this file's folder\ntrain: {epochs: 5}\n")
    assert read_config(child) == {
        "model": {"params": {"backbone": "resnet18", "dropout": 0.1}},
        "train": {"epochs": 5},
    }


def test_a_derived_config_saves_exactly_what_its_full_copy_saves(tmp_path):
    """The saved config.yaml (and so every provenance record) does not depend on how a config is written."""
    full = _edited_copy(tmp_path, "asd_model.tiny.yaml", lambda data: data["train"].update(epochs=7))
    (tmp_path / "bases").mkdir()
    _edited_copy(tmp_path / "bases", "asd_model.tiny.yaml", lambda data: None)
    derived = _write(tmp_path, "derived.yaml", "base: bases/asd_model.tiny.yaml\ntrain: {epochs: 7}\n")
    save_config(load_config(full, SerialOEConfig), tmp_path / "full_saved.yaml")
    save_config(load_config(derived, SerialOEConfig), tmp_path / "derived_saved.yaml")
    saved = (tmp_path / "derived_saved.yaml").read_text()
    assert saved == (tmp_path / "full_saved.yaml").read_text()
    assert "base" not in yaml.safe_load(saved)


def test_a_missing_base_names_both_files_and_the_fix(tmp_path):
    child = _write(tmp_path, "child.yaml", "base: asd_model.cpu.yaml\ntrain: {epochs: 5}\n")
    with pytest.raises(ConfigError) as err:
        read_config(child)
    message = str(err.value)
    assert str(child) in message and str(tmp_path / "asd_model.cpu.yaml") in message
    assert "relative to the config's own folder" in message


@pytest.mark.parametrize("text", ["base: 3\n", "base:\n"], ids=["number", "empty"])
def test_a_base_that_names_no_file_is_an_error(tmp_path, text):
    with pytest.raises(ConfigError, match="'base:' must name a config file"):
        read_config(_write(tmp_path, "child.yaml", text))


def test_a_cycle_of_bases_names_every_file_in_it(tmp_path):
    a = _write(tmp_path, "a.yaml", "base: b.yaml\ntrain: {epochs: 1}\n")
    b = _write(tmp_path, "b.yaml", "base: a.yaml\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=re.escape(f"config bases form a cycle: {a} -> {b} -> {a}")):
        read_config(a)
    itself = _write(tmp_path, "itself.yaml", "base: itself.yaml\n")
    with pytest.raises(ConfigError, match=re.escape(f"cycle: {itself} -> {itself}; remove or change")):
        read_config(itself)


def test_an_empty_section_does_not_silently_drop_the_base_section(tmp_path):
    _write(tmp_path, "a.yaml", "train: {epochs: 3}\n")
    child = _write(tmp_path, "child.yaml", "base: a.yaml\ntrain:\n  # epochs: 5\n")
    with pytest.raises(ConfigError, match=re.escape(f"{child}.train is empty: it would replace the base's")):
        read_config(child)


# ------------------------------------------------------------------ rules across sections, checked at load


def _refused(tmp_path, name, edit, *fragments):
    """Shipped config ``name`` with ``edit`` applied is refused at load, naming the file and ``fragments``."""
    path = _edited_copy(tmp_path, name, edit)
    with pytest.raises(ConfigError) as err:
        load_config(path, schema_of(path))
    assert str(err.value).startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in str(err.value)


def test_a_target_part_needs_the_domain_head(tmp_path):
    # without the rule, training fails at its first step with KeyError: 'domain'
    _refused(
        tmp_path,
        "asd_model.tiny.yaml",
        lambda data: data["train"].update(target_batch_size=4),
        "train.target_batch_size: 4",
        "set model.params.domain_head: true",
    )
    load_config(CONF / "asd_model.domain_classifier_tiny.yaml", SerialOEConfig)  # the head is there


@pytest.mark.parametrize("name", ["asd_model.100.yaml", "asd_model.200.yaml"])
def test_attention_heads_must_divide_the_mel_bands(tmp_path, name):
    # without the rule, the model fails to build with torch's "embed_dim must be divisible by num_heads"
    _refused(
        tmp_path,
        name,
        lambda data: data["model"]["params"].update(num_heads=5),
        "model.params.num_heads: 5 does not divide frontend.n_mels: 224",
        "choose num_heads among 1, 2, 4, 7, 8",
    )


@pytest.mark.parametrize(
    "name, edit, subsets_key",
    [
        (
            "asd_model.tiny.yaml",
            lambda data: data.update(
                embed={**data["embed"], "inlier_subsets": ["train"]}, detect={"inlier_sets": ["valid"]}
            ),
            "embed.inlier_subsets",
        ),
        ("dgmix.tiny.yaml", lambda data: data["embed"].update(inlier_subsets=["train"]), "embed.inlier_subsets"),
        (
            "baseline.yaml",
            lambda data: data.update(inlier_subsets=["train"], detect={"inlier_sets": ["valid"]}),
            "inlier_subsets",
        ),
        (
            "dcase_ae.tiny.yaml",
            lambda data: data.update(
                embed={**data["embed"], "inlier_subsets": ["train"]}, detect={"inlier_sets": ["valid"]}
            ),
            "embed.inlier_subsets",
        ),
    ],
    ids=["system1", "dgmix", "baseline", "dcase_ae"],
)
def test_the_valid_inlier_set_needs_valid_inliers(tmp_path, name, edit, subsets_key):
    # without the rule, the detector stage fails after training: "only 0 'valid' inlier clips"
    _refused(tmp_path, name, edit, f"{subsets_key} ['train'] embeds none", f"add valid to {subsets_key}")


def test_dgmix_embeds_only_checkpoints_that_training_writes(tmp_path):
    # without the rule, the embedding stage fails after training on a missing checkpoint file
    _refused(
        tmp_path,
        "dgmix.tiny.yaml",
        lambda data: data["embed"].update(checkpoints=["checkpoint-2epochs", "checkpoint-4epochs"]),
        "embed.checkpoints ['checkpoint-4epochs'] are not written by training",
        "'checkpoint-1epochs', 'checkpoint-2epochs', 'checkpoint-3epochs', 'checkpoint-best', 'checkpoint-last'",
    )


def test_dgmix_fine_tuning_saves_the_checkpoint_it_publishes(tmp_path):
    # without the rule, publishing fails after fine-tuning on a checkpoint that was never saved
    _refused(
        tmp_path,
        "dgmix.cpu.yaml",
        lambda data: data["finetune"].update(save_epochs=[2]),
        "finetune.save_epochs [2] lacks finetune.epochs (5)",
        "checkpoint-35epochs",
    )


# ------------------------------------------------------------------ ranges of numeric keys (issue 36, fault 2)

OUT_OF_RANGE = [
    ("asd_model.tiny.yaml", "train.epochs", 0, "train.epochs: 0 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "train.epochs", -3, "train.epochs: -3 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "train.batch_size", 0, "train.batch_size: 0 is out of range; allowed: >= 2"),
    ("asd_model.tiny.yaml", "train.grad_accum", 0, "train.grad_accum: 0 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "train.mixup_alpha", 0, "train.mixup_alpha: 0.0 is out of range; allowed: > 0"),
    ("asd_model.tiny.yaml", "train.target_mix_ratio", 1.5, "target_mix_ratio: 1.5 is out of range; allowed: [0, 1]"),
    ("asd_model.tiny.yaml", "train.log_interval_epochs", 0, "train.log_interval_epochs: 0 is out of range"),
    ("asd_model.tiny.yaml", "embed.batch_size", 0, "embed.batch_size: 0 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "embed.n_split", -1, "embed.n_split: -1 is out of range; allowed: >= 0"),
    ("asd_model.tiny.yaml", "frontend.hop_length", -256, "frontend.hop_length: -256 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "frontend.n_mels", 0, "frontend.n_mels: 0 is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "frontend.n_mels", 2000, "n_mels: 2000 is out of range; allowed: [1, "),
    ("asd_model.tiny.yaml", "frontend.f_max", 12000, "f_max: 12000.0: need f_min < f_max <= 8000 Hz"),
    ("asd_model.tiny.yaml", "detect.ks", [1, 0], "detect.ks: 0 in [1, 0] is out of range; allowed: >= 1"),
    ("asd_model.tiny.yaml", "detect.seed", -1, "detect.seed: -1 is out of range; allowed: >= 0"),
    ("dgmix.tiny.yaml", "pretrain.epochs", 0, "pretrain.epochs: 0 is out of range; allowed: >= 1"),
    ("dgmix.tiny.yaml", "pretrain.grad_accum", 0, "pretrain.grad_accum: 0 is out of range; allowed: >= 1"),
    ("dgmix.tiny.yaml", "pretrain.save_epochs", [0, 1], "pretrain.save_epochs: 0 in [0, 1] is out of range"),
    ("dgmix.tiny.yaml", "finetune.batch_size", 0, "finetune.batch_size: 0 is out of range; allowed: >= 2"),
    ("dgmix.tiny.yaml", "model.final_groups", 0, "model.final_groups: 0 is out of range; allowed: >= 1"),
    ("dgmix.tiny.yaml", "vicreg.mixup_alpha", -1, "vicreg.mixup_alpha: -1.0 is out of range; allowed: > 0"),
    ("dgmix.tiny.yaml", "embed.batch_size", 0, "embed.batch_size: 0 is out of range; allowed: >= 1"),
    ("baseline.yaml", "logmel.n_fft", 0, "logmel.n_fft: 0 is out of range; allowed: >= 2"),
    ("baseline.yaml", "logmel.n_mels", 600, "n_mels: 600 is out of range; allowed: [1, "),
    ("baseline.yaml", "detect.reference_folds", 1, "detect.reference_folds: 1 is out of range; allowed: >= 2"),
]


@pytest.mark.parametrize("name, key, value, message", OUT_OF_RANGE, ids=lambda v: str(v))
def test_an_impossible_number_is_refused_at_load_naming_the_key_its_value_and_the_range(
    tmp_path, name, key, value, message
):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(set_keys(read_config(CONF / name), {key: value})))
    with pytest.raises(ConfigError) as err:
        load_config(path, schema_of(path))
    assert str(err.value).startswith(f"{path}") and message in str(err.value)
    assert "\n" not in str(err.value)


def _schemas(cls, seen):
    if cls not in seen:
        seen.append(cls)
        for f in dataclasses.fields(cls):
            kind = typing.get_type_hints(cls)[f.name]
            if dataclasses.is_dataclass(kind):
                _schemas(kind, seen)
    return seen


def _is_numeric(kind):
    kinds = typing.get_args(kind) or (kind,)
    return any(k in (int, float) or _is_numeric(k) for k in kinds if k is not kind) or kind in (int, float)


def test_every_numeric_key_of_every_schema_declares_its_range():
    from asd_tools.systems.registry import SYSTEMS

    schemas = []
    for system in SYSTEMS.values():
        _schemas(system.config_class, schemas)
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in schemas
        for f in dataclasses.fields(cls)
        if _is_numeric(typing.get_type_hints(cls)[f.name]) and f.name not in getattr(cls, "RANGES", {})
    ]
    assert len(schemas) > 8 and missing == []


# ------------------------------------------------------------------ YAML mistakes (issue 36, fault 9)


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("system: baseline\nlogmel:\n  n_mels: 64\n  n_fft: 1024\n  n_mels: 128\ndetect: {}\n")
    with pytest.raises(ConfigError) as err:
        read_config(path)
    assert str(err.value) == f"{path}: key 'n_mels' is given twice in one mapping, on lines 3 and 5; keep one of them"


@pytest.mark.parametrize(
    "text, where",
    [("logmel: {n_mels: 64\ndetect: {}\n", "line 2, column 7"), ("a: 1\n  b: 2\n", "line 2, column 4")],
)
def test_a_yaml_syntax_error_is_one_line_naming_the_file_and_the_line(tmp_path, text, where):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_config(path)
    assert str(err.value).startswith(f"{path}: not valid YAML at {where}: ") and "\n" not in str(err.value)
