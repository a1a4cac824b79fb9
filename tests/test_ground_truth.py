"""Evaluation labels are read at scoring time; partial labels and machine subsets are marked."""

import shutil

import pandas as pd
import pytest

from asd_tools.bin import score
from asd_tools.data.ground_truth import BadGroundTruth, label_evaluation_clips, read_ground_truth_file
from asd_tools.data.manifest import load_manifest
from asd_tools.datasets.registry import dataset_spec
from asd_tools.scoring.report import machine_set_name
from tests.conftest import private_copy, recipe_dirs, run_recipe

TAG = "asd_model.tiny"
CHECKPOINT = "checkpoint-best"


def test_labels_come_from_the_ground_truth_files(tiny_root, tiny_dump):
    manifest = load_manifest(tiny_dump, ["fan"])
    labelled = label_evaluation_clips(manifest, tiny_root / "ground_truth", dataset_spec("dcase2022"))
    eval_test = labelled[(labelled.dataset == "eval") & (labelled.split == "test")]
    assert set(eval_test["state"]) == {"normal", "anomaly"} and set(eval_test["domain"]) == {"source", "target"}
    truth = pd.read_csv(
        tiny_root / "ground_truth/ground_truth_data/ground_truth_fan_section_03_test.csv", header=None
    ).set_index(0)[1]
    by_name = eval_test.set_index("file_name")["state"]
    for name, label in truth.items():
        assert by_name[name] == ("anomaly" if label else "normal")
    # without ground truth the clips stay unlabelled, and the manifest itself is never changed
    assert set(
        label_evaluation_clips(manifest, None, dataset_spec("dcase2022")).query(
            "dataset == 'eval' and split == 'test'"
        )["state"]
    ) == {"unknown"}
    assert set(manifest.query("dataset == 'eval' and split == 'test'")["state"]) == {"unknown"}


@pytest.mark.parametrize(
    "lines, message",
    [
        (["file_name,label", "{a},0", "{b},0"], "line 1: 'file_name,label' looks like a header row"),
        (["{a},2", "{b},0"], "line 1: label '2' of {a} is not 0 or 1"),
        (["{a},1", "section_03_9999.wav,0", "{b},0"], "line 2: section_03_9999.wav is not a test clip"),
        (["{a},1,x", "{b},0"], "line 1: '{a},1,x' is not '<file name>,<0 or 1>'"),
        (["{a},1", "{a},0", "{b},0"], "line 2: {a} is labelled twice"),
        (["{a},1"], "has no label for 1 test clips"),
    ],
)
def test_malformed_ground_truth_names_the_file_and_line(tmp_path, lines, message):
    names = {"a": "section_03_0000.wav", "b": "section_03_0001.wav"}
    path = tmp_path / "ground_truth_fan_section_03_test.csv"
    path.write_text("".join(line.format(**names) + "\n" for line in lines))
    with pytest.raises(BadGroundTruth) as err:
        read_ground_truth_file(path, names.values())
    assert str(path) in str(err.value) and message.format(**names) in str(err.value)


def test_machine_set_names():
    assert machine_set_name(["valve", "fan"], dataset_spec("dcase2022")) == "only_fan+valve"
    assert (
        machine_set_name("bearing fan gearbox slider ToyCar ToyTrain valve".split(), dataset_spec("dcase2022")) == "all"
    )
    for bad, message in (
        ([], "no machine types"),
        (["Fan"], r"unknown machine type\(s\) 'Fan' \(did you mean 'fan'\?\)"),
        (["fan", "fan"], "twice"),
    ):
        with pytest.raises(ValueError, match=message):
            machine_set_name(bad, dataset_spec("dcase2022"))


def _scored_experiment(tiny_job, tmp_path):
    """A private copy of the tiny job's score tables (the session's job stays untouched)."""
    folder, _ = tiny_job
    expdir = tmp_path / "exp"
    for machine in ("fan", "valve"):
        source = folder / "exp" / machine / TAG / CHECKPOINT / "scores.csv"
        (expdir / machine / TAG / CHECKPOINT).mkdir(parents=True)
        shutil.copy(source, expdir / machine / TAG / CHECKPOINT / "scores.csv")
    return folder, expdir


def _score(folder, expdir, ground_truth, capsys, machines="fan valve"):
    args = ["--dumpdir", str(folder / "dump"), "--expdir", str(expdir), "--machines", machines, "--tag", TAG]
    score.main([*args, "--ground_truth_dir", str(ground_truth)])
    return capsys.readouterr().out


@pytest.mark.e2e
def test_ground_truth_published_changed_or_withdrawn_after_the_dump(tiny_job, tmp_path, capsys):
    folder, expdir = _scored_experiment(tiny_job, tmp_path)
    result = expdir / "only_fan+valve" / TAG / CHECKPOINT
    truth = tmp_path / "ground_truth"
    truth.mkdir()
    # no ground truth yet: the evaluation set is not scored, and says so
    out = _score(folder, expdir, truth, capsys)
    assert "eval not scored (no ground truth)" in out
    assert "eval_official" not in pd.read_csv(result / "score.csv")
    assert "eval: no section is labelled" in (result / "score.md").read_text()
    # ground truth published later: the next scoring uses it, with no re-dump
    shutil.copytree(folder / "data/ground_truth", truth, dirs_exist_ok=True)
    out = _score(folder, expdir, truth, capsys)
    assert "up to date" not in out and "eval " in out
    first = pd.read_csv(result / "score.csv").set_index("postprocess")["eval_official"]
    assert "eval: all 6 sections labelled." in (result / "score.md").read_text()
    assert "up to date" in _score(folder, expdir, truth, capsys)
    # ground truth corrected: the new labels are used
    path = truth / "ground_truth_data/ground_truth_fan_section_03_test.csv"
    rows = path.read_text().splitlines()
    path.write_text("".join(f"{r.split(',')[0]},{1 - int(r.split(',')[1])}\n" for r in rows))
    _score(folder, expdir, truth, capsys)
    second = pd.read_csv(result / "score.csv").set_index("postprocess")["eval_official"]
    assert not first.equals(second.loc[first.index])
    # ground truth of one section withdrawn: the figure is marked partial, never "eval"
    for sub in ("ground_truth_data", "ground_truth_domain"):
        (truth / sub / "ground_truth_valve_section_05_test.csv").unlink()
    out = _score(folder, expdir, truth, capsys)
    assert "eval_partial" in out and "(5/6 sections labelled)" in out
    board = pd.read_csv(result / "score.csv")
    assert "eval_official" not in board and "eval_partial_official" in board
    md = (result / "score.md").read_text()
    assert "only 5 of 6 sections are labelled" in md and "Missing: valve 05" in md
    # the submission still covers every evaluation clip
    files = list((result / "teams/asd_tools" / f"{TAG}_{CHECKPOINT}").glob("anomaly_score_*.csv"))
    assert len(files) == 6


@pytest.mark.e2e
def test_scoring_a_subset_never_touches_the_full_table(tiny_job, tmp_path, capsys):
    folder, expdir = _scored_experiment(tiny_job, tmp_path)
    truth = folder / "data/ground_truth"
    _score(folder, expdir, truth, capsys)
    both = expdir / "only_fan+valve" / TAG / CHECKPOINT
    before = {p: p.read_bytes() for p in both.rglob("*") if p.is_file()}
    out = _score(folder, expdir, truth, capsys, machines="fan")
    assert str(expdir / "only_fan" / TAG / CHECKPOINT) in out
    assert {p: p.read_bytes() for p in both.rglob("*") if p.is_file()} == before
    fan = expdir / "only_fan" / TAG / CHECKPOINT
    assert "Machine types: fan (1 of the 7: a subset)." in (fan / "score.md").read_text()
    submission = {p.name for p in (fan / "teams/asd_tools" / f"{TAG}_{CHECKPOINT}").iterdir()}
    assert submission == {
        f"{kind}_fan_section_0{s}_test.csv" for kind in ("anomaly_score", "decision_result") for s in (3, 4, 5)
    }


@pytest.mark.e2e
def test_score_script_names_what_is_missing(tiny_job, tmp_path):
    folder, _ = tiny_job
    common = ["--expdir", str(folder / "exp"), "--dumpdir", str(folder / "dump")]
    for machines, tag, message in (
        ("fan valve", "asd_model.tinny", "no experiment 'asd_model.tinny' for fan (experiments there: "),
        ("Fan", TAG, "unknown machine type(s) 'Fan' (did you mean 'fan'?)"),
        ("", TAG, "no experiment 'asd_model.tiny' for bearing"),  # empty: every machine type of the data set
    ):
        result = _run_script("asd.sh", "--stage", "6", *common, "--machines", machines, "--tag", tag)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert tag == TAG or TAG in result.stderr  # the experiments that are there are named
        assert not (folder / "exp" / "only_fan+valve" / "asd_model.tinny").exists()  # no results folder for it


def _run_script(*args):
    import subprocess

    from tests.conftest import SCRIPTS

    return subprocess.run([f"./{args[0]}", *args[1:]], cwd=SCRIPTS, capture_output=True, text=True)


@pytest.mark.e2e
def test_recipe_scores_subsets_apart(tiny_job, tmp_path):
    folder = private_copy(tiny_job, tmp_path)
    out = run_recipe(
        "job.sh",
        "--no",
        "tiny",
        "--synthetic_size",
        "tiny",
        "--machines",
        "valve",
        "--stage",
        "2",
        "--figures",
        "false",  # figures are tested in test_report
        *recipe_dirs(folder),
    )
    assert "only_valve" in out
    assert (folder / "exp/only_valve" / TAG / CHECKPOINT / "score.md").exists()
    assert (folder / "exp/only_fan+valve" / TAG / CHECKPOINT / "score.md").exists()
