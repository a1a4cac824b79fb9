"""End to end on tiny synthetic data: job.sh with the tiny config (all stages, scoring, submission)."""

import pandas as pd
import pytest

from tests.conftest import private_copy, recipe_dirs, run_recipe

pytestmark = pytest.mark.e2e


def test_job_on_tiny(tiny_job, tmp_path_factory):
    tmp_path, out = tiny_job
    assert out.count("official score") == 3  # checkpoint-1epochs, -2epochs, -best
    result = tmp_path / "exp/only_fan+valve/asd_model.tiny/checkpoint-best"
    board = pd.read_csv(result / "score.csv")
    n_poolings = 6  # min/max_anomaly, lower/upper_mean_anomaly, mean, median: both orientations
    # detectors x ks x inlier sets x feature sets x poolings, + the section logit per pooling
    assert len(board) == 3 * 2 * 2 * 3 * n_poolings + n_poolings
    assert board.postprocess.str.startswith("section_logit_").sum() == n_poolings
    # both orientations, features not standardised (no "_std")
    assert {"gmm_k1_all_embed_min_anomaly", "gmm_k1_all_embed_max_anomaly"} <= set(board.postprocess)
    assert "Official DCASE 2022 Task 2 score" in (result / "score.md").read_text()
    submission = list((result / "teams/asd_tools/asd_model.tiny_checkpoint-best").glob("*.csv"))
    assert len(submission) == 12
    for machine in ("fan", "valve"):
        machine_dir = tmp_path / "exp" / machine / "asd_model.tiny"
        assert (machine_dir / "train.log").exists() and (machine_dir / "config.yaml").exists()
        assert list((machine_dir / "tensorboard").iterdir())
    # a second run (on a copy: the session's run stays as it is) skips finished work (training is not repeated)
    copy = private_copy(tiny_job, tmp_path_factory.mktemp("again"))
    again = run_recipe(
        "job.sh", "--no", "tiny", "--synthetic_size", "tiny", "--machines", "fan valve", "--start_stage", "3",
        *recipe_dirs(copy),
    )  # fmt: skip
    assert "official score" in again
    assert "training already finished" in (copy / "exp/fan/asd_model.tiny/train.log").read_text()
