"""End to end on tiny synthetic data: stages 0-2, the baseline, scoring, submission files."""

import shutil
import subprocess

import pandas as pd
import pytest

from tests.conftest import SCRIPTS, private_copy, recipe_dirs, run_recipe

pytestmark = pytest.mark.e2e


def test_baseline_recipe_on_tiny(tiny_job, tiny_baseline, tmp_path):
    folder, out = tiny_baseline
    assert "official score" in out
    result = folder / "exp/only_fan+valve/baseline/features"
    board = pd.read_csv(result / "score.csv")
    assert board["dev_official"].between(0, 1).all() and board["eval_official"].between(0, 1).all()
    assert board["dev_official"].is_monotonic_decreasing
    md = (result / "score.md").read_text()
    assert "Official DCASE 2022 Task 2 score" in md and "NOT the official score" in md
    submission = sorted(p.name for p in (result / "teams/asd_tools/baseline_features").iterdir())
    assert len(submission) == 2 * 3 * 2
    assert (folder / "exp/fan/baseline/detect.log").exists()  # logs per stage
    # re-running every stage (on a copy: the session's runs stay as they are) skips finished work and gives
    # the same table
    copy = private_copy(tiny_job, tmp_path)
    shutil.copytree(folder / "exp", copy / "exp", dirs_exist_ok=True)
    again = run_recipe("baseline.sh", "--synthetic_size", "tiny", "--machines", "fan valve", *recipe_dirs(copy))
    assert "up to date" in (copy / "dump/dump.log").read_text() + again
    assert pd.read_csv(copy / "exp/only_fan+valve/baseline/features/score.csv").equals(board)


def _real_layout(root):
    """A folder in the real DCASE 2022 layout that the project did not generate: noise clips,
    real attribute forms, unlabelled evaluation test names, no ground truth."""
    from tests.conftest import write_wav

    attrs = {"gearbox": "volt_2.5_wt_30", "ToyCar": "car_A1_spd_28V_mic_1_noise_1"}
    seed = 0
    for machine, attr in attrs.items():
        for section in range(6):
            dataset = "dev" if section < 3 else "eval"
            for domain, count in (("source", 8), ("target", 2)):
                for i in range(count):
                    seed += 1
                    name = f"section_{section:02d}_{domain}_train_normal_{i:04d}_{attr}.wav"
                    write_wav(root / dataset / machine / "train" / name, seconds=2.5, seed=seed)
            for i in range(8):
                seed += 1
                if dataset == "dev":
                    domain, state = ("source", "target")[i % 2], ("normal", "anomaly")[i // 4]
                    name = f"section_{section:02d}_{domain}_test_{state}_{i:04d}_{attr}.wav"
                else:
                    name = f"section_{section:02d}_{i:04d}.wav"
                write_wav(root / dataset / machine / "test" / name, seconds=2.5, seed=seed)


def test_baseline_runs_unchanged_on_a_real_layout_folder(tmp_path):
    _real_layout(tmp_path / "real")
    out = run_recipe(
        "baseline.sh",
        "--data",
        "dcase2022",
        "--stage",
        "1",
        "--machines",
        "gearbox ToyCar",
        "--data_root",
        str(tmp_path / "real"),
        "--dumpdir",
        str(tmp_path / "dump"),
        "--expdir",
        str(tmp_path / "exp"),
        "--figures",
        "false",  # figures are tested in test_report
    )
    assert "official score" in out and "dev" in out
    result = tmp_path / "exp/only_gearbox+ToyCar/baseline/features"
    assert "eval: no section is labelled (no ground truth): not scored" in (result / "score.md").read_text()
    assert "eval not scored (no ground truth)" in out
    files = list((result / "teams/asd_tools/baseline_features").glob("anomaly_score_*.csv"))
    assert len(files) == 2 * 3
    assert all(len(f.read_text().splitlines()) == 8 for f in files)


def test_parallel_machine_types_give_the_sequential_scores_and_name_the_failed_ones(tiny_dump, tmp_path):
    """--nj 2: stages 3-5 of two machine types at once; the same score tables as one after the other,
    and a machine type that fails is named while the others finish."""
    common = ["--dumpdir", str(tiny_dump), "--machines", "fan valve", "--stage", "3", "--stop_stage", "5"]
    run_recipe("baseline.sh", *common, "--expdir", str(tmp_path / "seq"))
    out = run_recipe("baseline.sh", *common, "--expdir", str(tmp_path / "par"), "--nj", "2")
    assert out.count("Stage 5:") == 1 and "Stage 5: detectors on every checkpoint for fan valve" in out
    for machine in ("fan", "valve"):
        sequential = (tmp_path / "seq" / machine / "baseline/features/scores.csv").read_bytes()
        assert (tmp_path / "par" / machine / "baseline/features/scores.csv").read_bytes() == sequential
    failing = subprocess.run(
        ["./baseline.sh", *common, "--expdir", str(tmp_path / "bad"), "--nj", "2", "--only_machines", "bearing fan"],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
    )
    assert failing.returncode == 1
    # the stage that failed (the baseline trains nothing: its first stage with work is 4), not "stages 3-5"
    assert "failed: stage 4 (embed) for bearing (see their logs above)" in failing.stderr
    assert (tmp_path / "bad/fan/baseline/features/scores.csv").exists()  # the other machine type finished
