"""The official DCASE 2022 metric against the official evaluator's own result files.

tests/golden/evaluator_2022.npz holds what Kota-Dohi/dcase2022_evaluator (``output_result``) wrote for
four seeded submissions (random scores, heavily tied scores, one section of all-equal scores, informative
scores) on seeded ground truth of two machine types x three sections (tools/golden/make_golden.py).
Every figure of it that this project computes must agree to 1e-9.

Not compared: the decision figures (precision, recall, F1: not computed here), the arithmetic means, the
jackknife interval, and the per-machine "source / target harmonic mean" rows, which slice the list of
[source AUCs, target AUCs] at half the number of sections (1 of 3 here), so that "source" is section
03's source AUC alone (``output_result``, ``performance[:, :len(section_ids)//2]``); the overall
source / target rows slice correctly and are compared.
"""

import csv
import importlib.util
import io

import numpy as np
import pandas as pd
import pytest

import tests.golden_inputs as gi
from asd_tools.scoring.metrics import section_table, summarise
from tests.golden_inputs import GOLDEN_DIR, digest, load_golden

TOLERANCE = 1e-9
SECTION_FIGURES = {"AUC (all)": "auc_mixed", "AUC (source)": "auc_source", "AUC (target)": "auc_target", "pAUC": "pauc"}
OVERALL = "over all machine types, sections, and domains"


@pytest.fixture(scope="module")
def golden():
    g = load_golden("evaluator_2022.npz")
    assert g["provenance"]["repository"] == "Kota-Dohi/dcase2022_evaluator"
    return g


@pytest.fixture(scope="module")
def inputs(golden):
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR.parents[1] / "tools/golden/make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    truth, systems = make_golden.evaluator_inputs(gi)
    assert digest(truth[["anomaly", "target"]].to_numpy()) == str(golden["truth_digest"]), "inputs changed"
    return truth, systems


def parse_result(text):
    """The evaluator's result CSV: {(machine, section): {figure: value}}, {machine: harmonic-mean row},
    {overall row label: row}, official score."""
    sections, machine_means, overall, official = {}, {}, {}, None
    machine, header = None, None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) == 1:
            machine = row[0]
        elif row[0] == "section":
            header = row
        elif row[0].isdigit():
            sections[(machine, int(row[0]))] = {h: float(v) for h, v in zip(header[1:], row[1:])}
        elif row[0] == "harmonic mean":
            machine_means[machine] = {"AUC": float(row[2]), "pAUC": float(row[3])}
        elif row[0].endswith(OVERALL):
            overall[row[0][: -len(OVERALL)].strip()] = {"AUC": float(row[2]), "pAUC": float(row[3])}
        elif row[0] == "official score":
            official = float(row[2])
    return sections, machine_means, overall, official


def our_figures(truth, scores):
    df = pd.DataFrame(
        {
            "dataset": "eval",
            "machine": truth["machine"],
            "section": truth["section"],
            "domain": np.where(truth["target"] == 1, "target", "source"),
            "state": np.where(truth["anomaly"] == 1, "anomaly", "normal"),
            "score": scores,
        }
    )
    sections = section_table(df, "score")
    return sections, summarise(sections, "source_target_hmean").set_index("machine")


@pytest.mark.parametrize("system", ["random", "ties", "constant_section", "informative"])
def test_every_figure_equals_the_official_2022_evaluator(golden, inputs, system):
    truth, systems = inputs
    theirs_sections, theirs_machines, theirs_overall, theirs_official = parse_result(str(golden[f"result/{system}"]))
    sections, summary = our_figures(truth, systems[system])
    assert len(theirs_sections) == len(sections) == 6
    for row in sections.itertuples():
        theirs = theirs_sections[(row.machine, row.section)]
        for figure, column in SECTION_FIGURES.items():
            assert getattr(row, column) == pytest.approx(theirs[figure], abs=TOLERANCE), (
                row.machine,
                row.section,
                figure,
            )
    for machine, theirs in theirs_machines.items():
        assert summary.loc[machine, "auc"] == pytest.approx(theirs["AUC"], abs=TOLERANCE), machine
        assert summary.loc[machine, "pauc"] == pytest.approx(theirs["pAUC"], abs=TOLERANCE), machine
    everything = summary.loc["all"]
    assert everything["auc"] == pytest.approx(theirs_overall["harmonic mean"]["AUC"], abs=TOLERANCE)
    assert everything["pauc"] == pytest.approx(theirs_overall["harmonic mean"]["pAUC"], abs=TOLERANCE)
    assert everything["auc_source"] == pytest.approx(theirs_overall["source harmonic mean"]["AUC"], abs=TOLERANCE)
    assert everything["auc_target"] == pytest.approx(theirs_overall["target harmonic mean"]["AUC"], abs=TOLERANCE)
    assert everything["official"] == pytest.approx(theirs_official, abs=TOLERANCE)


def test_the_constant_section_scores_chance(golden, inputs):
    """The submission with one all-equal section: the evaluator gives it AUC and pAUC 0.5, and so do we."""
    truth, systems = inputs
    theirs_sections, *_ = parse_result(str(golden["result/constant_section"]))
    assert theirs_sections[("fan", 4)]["AUC (source)"] == theirs_sections[("fan", 4)]["pAUC"] == 0.5
    sections, _ = our_figures(truth, systems["constant_section"])
    row = sections.set_index(["machine", "section"]).loc[("fan", 4)]
    assert row["auc_source"] == row["auc_target"] == row["pauc"] == pytest.approx(0.5, abs=TOLERANCE)
