"""Choosing the post-process on dev: a (nearly) constant scorer is listed but never chosen; chance is stated."""

import numpy as np
import pandas as pd
import pytest

from asd_tools.datasets.registry import dataset_spec
from asd_tools.ensembles.average import ScoreTable, top_postprocesses
from asd_tools.scoring.choice import DEGENERATE, choose_postprocess, degenerate_sections, eligible
from asd_tools.scoring.report import leaderboard, score_experiment

MACHINES = ("fan", "valve")


def labelled_clips(n=10, machines=MACHINES, sections=(0, 1, 2)):
    """Dev test clips: per machine and section, n normal and n anomalous clips of each domain."""
    rows = [
        dict(
            clip_id=f"{m}_{s}_{d}_{st}_{i}",
            machine=m,
            dataset="dev",
            section=s,
            domain=d,
            state=st,
            file_name=f"section_{s:02d}_{d}_test_{st}_{i:04d}.wav",
            subset="test",
        )
        for m in machines
        for s in sections
        for d in ("source", "target")
        for st in ("normal", "anomaly")
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def with_scores(clips, seed=0, signal=-1.0):
    """Columns ``flat`` (constant) and two real scorers below chance: ``worse`` and ``noisy`` (weaker)."""
    rng = np.random.default_rng(seed)
    anomaly = (clips["state"] == "anomaly").to_numpy()
    return clips.assign(
        flat=1.0,
        worse=rng.normal(size=len(clips)) + signal * anomaly,
        noisy=rng.normal(size=len(clips)) + 0.3 * signal * anomaly,
    )


def test_a_constant_scorer_ranks_last_and_is_never_chosen():
    # the constant column scores exactly 50 (chance), above every real scorer below chance: ranked on
    # the official score alone it would be chosen
    board = leaderboard(with_scores(labelled_clips()), dataset_spec("dcase2022"))
    flat = board.set_index("postprocess").loc["flat"]
    assert flat["dev_official"] == pytest.approx(0.5)
    assert (board.set_index("postprocess")["dev_official"].drop("flat") < 0.5).all()
    assert board["postprocess"].iloc[-1] == "flat"
    assert choose_postprocess(board) in {"worse", "noisy"}
    assert flat[DEGENERATE].split(";") == [f"dev/{m}/{s:02d}" for m in MACHINES for s in (0, 1, 2)]


def test_nearly_constant_means_fewer_distinct_values_than_a_tenth_of_the_clips():
    clips = labelled_clips(n=10)  # 40 clips per section: fewer than 4 distinct values is degenerate
    fan0 = (clips["machine"] == "fan") & (clips["section"] == 0)
    three = np.where(fan0, np.arange(len(clips)) % 3, np.arange(len(clips)))
    four = np.where(fan0, np.arange(len(clips)) % 4, np.arange(len(clips)))
    scored = clips.assign(three=three.astype(float), four=four.astype(float))
    assert degenerate_sections(scored, "three") == ["dev/fan/00"]
    assert degenerate_sections(scored, "four") == []


def test_a_section_of_one_machine_type_only_bars_that_machine_type():
    board = pd.DataFrame({"postprocess": ["a", "b"], DEGENERATE: ["dev/fan/00;eval/fan/03", ""]})
    assert eligible(board).tolist() == [False, True]
    assert eligible(board, "fan").tolist() == [False, True]
    assert eligible(board, "valve").tolist() == [True, True]


def test_when_every_post_process_is_constant_the_error_says_so():
    board = leaderboard(labelled_clips().assign(flat=1.0, flat2=2.0), dataset_spec("dcase2022"))
    with pytest.raises(ValueError, match="every one of the 2 post-processes gives .*constant"):
        choose_postprocess(board)
    assert choose_postprocess(board, "flat2") == "flat2"  # asked for by name: scored, with a warning


def test_ensembles_never_take_a_degenerate_member():
    board = pd.DataFrame({"postprocess": ["flat", "real"], DEGENERATE: ["dev/fan/00", ""], "dev_official": [0.5, 0.45]})
    table = ScoreTable("t", board, {"fan": "unused.csv"})
    assert top_postprocesses([[table]], "dev_official", per_table=2, top=2) == [(table, "real")]


def write_experiment(tmp_path, clips, name="exp"):
    """score files (one per machine type) and a manifest for ``score_experiment``."""
    manifest = clips.drop(columns=[c for c in clips if c in ("flat", "worse", "noisy")]).set_index("clip_id")
    files = []
    for machine, part in clips.groupby("machine"):
        path = tmp_path / f"{name}_{machine}.csv"
        part[["clip_id", "subset", "flat", "worse", "noisy"]].to_csv(path, index=False)
        files.append(path)
    return files, manifest


def test_score_md_states_chance_the_choice_and_what_was_set_aside(tmp_path):
    files, manifest = write_experiment(tmp_path, with_scores(labelled_clips()))
    best, summary, _ = score_experiment(
        files, manifest, tmp_path / "out", figures=False, spec=dataset_spec("dcase2022")
    )
    assert best != "flat"
    text = (tmp_path / "out" / "score.md").read_text()
    assert "3 post-processes were compared" in text and "1 of them were set aside" in text
    assert "- `flat`: dev/fan/00, dev/fan/01, dev/fan/02, dev/valve/00, dev/valve/01, dev/valve/02" in text
    assert "score (%; chance = 50)" in text and "vs chance" in text
    overall = 100 * summary.loc[summary["machine"] == "all", "official"].iloc[0]
    assert f"{overall - 50:+.2f}" in text  # the signed distance to chance of the chosen post-process
    board = pd.read_csv(tmp_path / "out" / "score.csv")
    values = 100 * board.loc[board[DEGENERATE].isna(), "dev_official"]
    assert f"median {np.median(values):.2f}" in text
