"""End to end on tiny synthetic data: stages 0-2, the baseline, scoring, submission files."""

import os
import subprocess
from pathlib import Path

import pandas as pd

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run_recipe(script, *args, cwd=SCRIPTS):
    result = subprocess.run(
        [f"./{script}", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_baseline_recipe_on_tiny(tmp_path):
    dirs = [
        "--data_root",
        str(tmp_path / "data"),
        "--dumpdir",
        str(tmp_path / "dump"),
        "--expdir",
        str(tmp_path / "exp"),
    ]
    out = run_recipe("baseline.sh", "--synthetic_size", "tiny", "--machines", "fan valve", *dirs)
    assert "official score" in out
    result = tmp_path / "exp/all/baseline/features"
    board = pd.read_csv(result / "score.csv")
    assert board["dev_official"].between(0, 1).all() and board["eval_official"].between(0, 1).all()
    assert board["dev_official"].is_monotonic_decreasing
    md = (result / "score.md").read_text()
    assert "Official DCASE 2022 score" in md and "NOT the official score" in md
    submission = sorted(p.name for p in (result / "teams/asd_tools/baseline_features").iterdir())
    assert len(submission) == 2 * 3 * 2
    # logs per stage
    assert (tmp_path / "dump/dump.log").exists() and (tmp_path / "exp/fan/baseline/detect.log").exists()
    # re-running skips finished work and gives the same table
    again = run_recipe("baseline.sh", "--synthetic_size", "tiny", "--machines", "fan valve", *dirs)
    assert "already" in (tmp_path / "dump/dump.log").read_text() + again
    assert pd.read_csv(result / "score.csv").equals(board)
