"""Training seeds as an option: --seeds runs each seed as <tag>/seed<N> and reports mean ± s.d."""

import argparse
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from asd_tools.bin.common import seeds_arg
from asd_tools.bin.compare import comparison_table, results_folders
from asd_tools.bin.train import seeded_config
from asd_tools.config import ConfigError, read_config, set_keys
from asd_tools.datasets.registry import dataset_spec
from asd_tools.scoring.report import score_experiment
from asd_tools.scoring.seeds import seed_table, write_seed_tables
from asd_tools.systems.registry import system_for_config
from tests.conftest import CONF, SCRIPTS, TINY_MACHINES, recipe_dirs, run_recipe
from tests.test_choice import labelled_clips, with_scores, write_experiment


def test_seeds_option_is_checked():
    assert seeds_arg("0 1,2") == [0, 1, 2]
    for bad in ("", "a", "-1", "0 0"):
        with pytest.raises(argparse.ArgumentTypeError):
            seeds_arg(bad)
    result = subprocess.run(["./asd.sh", "--seeds", "0 x"], cwd=SCRIPTS, capture_output=True, text=True)
    assert result.returncode == 1 and "--seeds takes non-negative integers" in result.stderr


def test_a_seed_replaces_every_seed_key_of_the_system(tmp_path):
    for name, keys in (("asd_model.tiny.yaml", ["train"]), ("dgmix.tiny.yaml", ["pretrain", "finetune"])):
        path = seeded_config(system_for_config(CONF / name), CONF / name, 7, tmp_path)
        seeded, original = read_config(path), read_config(CONF / name)
        assert [s for s in seeded if isinstance(seeded[s], dict) and seeded[s].get("seed") == 7] == keys
        for section in keys:  # nothing else changed
            assert {**seeded[section], "seed": original[section].get("seed")} == {
                **original[section],
                "seed": original[section].get("seed"),
            }
    baseline = CONF / "baseline.yaml"
    assert seeded_config(system_for_config(baseline), baseline, 7, tmp_path) == baseline  # nothing random


def test_set_keys_copies_and_names_a_missing_section():
    data = {"train": {"seed": 0, "epochs": 2}}
    assert set_keys(data, {"train.seed": 3}) == {"train": {"seed": 3, "epochs": 2}}
    assert data["train"]["seed"] == 0
    with pytest.raises(ConfigError, match="no section 'pretrain'"):
        set_keys(data, {"pretrain.seed": 1})


def scored_seeds(tmp_path, seeds=(0, 1, 2)):
    """Three seeds' results folders of a synthetic experiment (scores drawn with the seed)."""
    tag_dir = tmp_path / "exp" / "data" / "only_fan+valve" / "tag"
    for seed in seeds:
        clips = with_scores(labelled_clips(), seed=seed, signal=1.0)
        files, manifest = write_experiment(tmp_path, clips, name=f"s{seed}")
        score_experiment(
            files, manifest, tag_dir / f"seed{seed}" / "checkpoint-best", figures=False, spec=dataset_spec("dcase2022")
        )
    return tag_dir


def test_the_seed_table_is_the_mean_and_sample_sd_of_each_seed_s_figures(tmp_path):
    tag_dir = scored_seeds(tmp_path)
    table = write_seed_tables(tag_dir, "tag", [0, 1, 2])
    chosen = table[(table["selection"] == "chosen") & (table["machine"] == "all")].iloc[0]
    summaries = [pd.read_csv(tag_dir / f"seed{s}" / "checkpoint-best" / "summary.csv") for s in (0, 1, 2)]
    values = [summary.query("machine == 'all'")["official"].iloc[0] for summary in summaries]
    assert chosen["mean"] == pytest.approx(np.mean(values))
    assert chosen["sd"] == pytest.approx(np.std(values, ddof=1))
    assert [chosen[f"seed{s}"] for s in (0, 1, 2)] == pytest.approx(values)
    fixed = table[table["selection"].str.startswith("fixed")]
    assert fixed["selection"].nunique() == 1 and "flat" not in fixed["selection"].iloc[0]
    report = (tag_dir / "seeds.md").read_text()
    assert f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}" in report


def test_chance_within_the_seeds_range_is_flagged(tmp_path):
    tag_dir = scored_seeds(tmp_path)
    runs = {s: tag_dir / f"seed{s}" for s in (0, 1, 2)}
    table = seed_table(runs)
    assert (table["near_chance"] == ((table["min"] <= 0.5) & (table["max"] >= 0.5))).all()
    # the weak scorer straddles chance on some machine type of some selection; the strong one never does
    assert not table.loc[table["selection"] == "chosen", "near_chance"].all()


def test_a_seed_that_was_not_scored_is_named(tmp_path):
    tag_dir = scored_seeds(tmp_path, seeds=(0, 1))
    with pytest.raises(FileNotFoundError, match="seed2"):
        write_seed_tables(tag_dir, "tag", [0, 1, 2])


@pytest.mark.e2e
def test_seeds_train_each_seed_apart_and_seed_0_is_the_config_s_own_run(tiny_job, tmp_path):
    folder, _ = tiny_job
    dirs = recipe_dirs(tmp_path)
    dirs[1], dirs[3] = str(folder / "data"), str(folder / "dump")  # the fixture's data, read only
    out = run_recipe(
        "job.sh", "--no", "tiny", "--machines", " ".join(TINY_MACHINES), "--start_stage", "3", "--figures", "false",
        "--seeds", "0 1", *dirs,
    )  # fmt: skip
    results = tmp_path / "exp" / "only_fan+valve" / "asd_model.tiny"
    assert "2 seeds, checkpoint-best (chosen): official dev" in out
    fixture = folder / "exp" / "only_fan+valve" / "asd_model.tiny" / "checkpoint-best" / "score.csv"
    seed0 = results / "seed0" / "checkpoint-best" / "score.csv"
    seed1 = results / "seed1" / "checkpoint-best" / "score.csv"
    assert seed0.read_bytes() == fixture.read_bytes()  # seed 0 is the config's own seed: the same run
    assert seed1.read_bytes() != seed0.read_bytes()
    saved = yaml.safe_load((tmp_path / "exp" / "fan" / "asd_model.tiny" / "seed1" / "config.yaml").read_text())
    assert saved["train"]["seed"] == 1
    assert (results / "seed1" / "checkpoint-best" / "teams").is_dir()
    table = comparison_table(results_folders([results]))
    assert "±" in table.loc["dev official", "asd_model.tiny/checkpoint-best"]
    run_recipe(
        "asd.sh", "--conf", "conf/tuning/asd_model.tiny.yaml", "--machines", " ".join(TINY_MACHINES),
        "--stage", "3", "--stop_stage", "3", "--seeds", "0 1", *dirs,
    )  # fmt: skip
    for seed in (0, 1):  # the seeded config is found current again: its temporary path is never recorded
        log = (tmp_path / "exp" / "fan" / "asd_model.tiny" / f"seed{seed}" / "train.log").read_text()
        assert log.rstrip().splitlines()[-2].endswith("training already finished; skipping")
