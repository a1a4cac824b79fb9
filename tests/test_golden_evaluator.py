"""The official metric of 2020-2024 against each year's official evaluator's own result files.

tests/golden/evaluator_<year>.npz holds what the evaluator's ``output_result`` wrote (2020:
y-kawagu/dcase2020_task2_evaluator, per machine ID; 2021:
y-kawagu/dcase2021_task2_evaluator, per section and domain; 2022: Kota-Dohi/dcase2022_evaluator; 2023,
2024: nttcslab/dcase202x_task2_evaluator) for four seeded submissions
(random scores, heavily tied scores, one section of all-equal scores, informative scores) on seeded ground
truth of two machine types of that year (tools/golden/make_golden.py). Every figure of it that this project
computes must agree to 1e-9, with the metric the data-set registry names for the year.

Not compared: the decision figures (precision, recall, F1: not computed here), the arithmetic means, the
jackknife interval, and the per-machine "source / target harmonic mean" rows. The 2021 evaluator slices
those at half the number of machine types, the 2022 evaluator
those at half the number of sections (1 of 3 here, ``performance[:, :len(section_ids)//2]``), so that its
"source" is the first section's source AUC alone; 2023 and 2024 slice them correctly, but ours has no
per-machine source/target row to compare. The overall source / target rows are compared from 2022 on
(2021's are harmonic means of AUCs alone per domain, which ours does not report).
"""

import csv
import importlib.util
import io

import numpy as np
import pandas as pd
import pytest

import tests.golden_inputs as gi
from asd_tools.datasets.registry import dataset_spec
from asd_tools.scoring.metrics import DOMAIN_COLUMNS, section_table, summarise
from tests.golden_inputs import GOLDEN_DIR, digest, load_golden

TOLERANCE = 1e-9
SECTION_FIGURES = {"AUC (all)": "auc_mixed", "AUC (source)": "auc_source", "AUC (target)": "auc_target", "pAUC": "pauc"}
OVERALL = "over all machine types, sections, and domains"


YEARS = (2021, 2022, 2023, 2024)
SYSTEMS = ("random", "ties", "constant_section", "informative")


@pytest.fixture(scope="module")
def make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR.parents[1] / "tools/golden/make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden_and_inputs(make_golden, year):
    golden = load_golden(f"evaluator_{year}.npz")
    assert make_golden.EVALUATORS[golden["provenance"]["repository"]] == year == int(golden["year"])
    truth, systems = make_golden.evaluator_inputs(gi, year)
    assert digest(truth[["anomaly", "target"]].to_numpy()) == str(golden["truth_digest"]), "inputs changed"
    return golden, truth, systems


def parse_result(text):
    """The evaluator's result CSV: {(machine, section): {figure: value}} (2021: keyed by (machine, section,
    domain)), {machine: harmonic-mean row}, {overall row label: row}, official score."""
    sections, machine_means, overall, official = {}, {}, {}, None
    machine, header = None, None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) == 1:
            machine = row[0]
        elif row[0] == "section":
            header = row
        elif row[0].isdigit() and header[1] == "domain":  # 2021
            sections[(machine, int(row[0]), row[1])] = {h: float(v) for h, v in zip(header[2:], row[2:])}
        elif row[0].isdigit():
            sections[(machine, int(row[0]))] = {h: float(v) for h, v in zip(header[1:], row[1:])}
        elif row[0] == "harmonic mean":
            machine_means[machine] = {"AUC": float(row[2]), "pAUC": float(row[3])}
        elif row[0].endswith(OVERALL):
            overall[row[0][: -len(OVERALL)].strip()] = {"AUC": float(row[2]), "pAUC": float(row[3])}
        elif row[0] == "official score":
            official = float(row[2])
    return sections, machine_means, overall, official


def our_figures(truth, scores, year):
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
    return sections, summarise(sections, dataset_spec(f"dcase{year}").metric).set_index("machine")


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("year", YEARS)
def test_every_figure_equals_the_official_evaluator(make_golden, year, system):
    golden, truth, systems = golden_and_inputs(make_golden, year)
    theirs_sections, theirs_machines, theirs_overall, theirs_official = parse_result(str(golden[f"result/{system}"]))
    sections, summary = our_figures(truth, systems[system], year)
    domains = ("source", "target") if year == 2021 else (None,)
    assert (
        len(theirs_sections)
        == len(sections) * len(domains)
        == truth.groupby(["machine", "section"]).ngroups * len(domains)
    )
    for row in sections.itertuples():
        for domain in domains:
            if domain:  # 2021: AUC and pAUC on one domain's clips
                theirs = theirs_sections[(row.machine, row.section, domain)]
                figures = {"AUC": f"dom_auc_{domain}", "pAUC": f"dom_pauc_{domain}"}
            else:
                theirs, figures = theirs_sections[(row.machine, row.section)], SECTION_FIGURES
            for figure, column in figures.items():
                where = (row.machine, row.section, domain, figure)
                assert getattr(row, column) == pytest.approx(theirs[figure], abs=TOLERANCE), where
    for machine, theirs in theirs_machines.items():
        assert summary.loc[machine, "auc"] == pytest.approx(theirs["AUC"], abs=TOLERANCE), machine
        assert summary.loc[machine, "pauc"] == pytest.approx(theirs["pAUC"], abs=TOLERANCE), machine
    everything = summary.loc["all"]
    assert everything["auc"] == pytest.approx(theirs_overall["harmonic mean"]["AUC"], abs=TOLERANCE)
    assert everything["pauc"] == pytest.approx(theirs_overall["harmonic mean"]["pAUC"], abs=TOLERANCE)
    if year >= 2022:
        assert everything["auc_source"] == pytest.approx(theirs_overall["source harmonic mean"]["AUC"], abs=TOLERANCE)
        assert everything["auc_target"] == pytest.approx(theirs_overall["target harmonic mean"]["AUC"], abs=TOLERANCE)
    assert everything["official"] == pytest.approx(theirs_official, abs=TOLERANCE)


@pytest.mark.parametrize("year", YEARS)
def test_the_constant_section_scores_chance(make_golden, year):
    """The submission with one all-equal section: the evaluator gives it AUC and pAUC 0.5, and so do we."""
    golden, truth, systems = golden_and_inputs(make_golden, year)
    key = (make_golden.EVALUATOR_MACHINES[year][0], make_golden.EVALUATOR_SECTIONS[year][-1])
    theirs_sections, *_ = parse_result(str(golden["result/constant_section"]))
    theirs = [theirs_sections[(*key, d)] for d in ("source", "target")] if year == 2021 else [theirs_sections[key]]
    assert {v for t in theirs for f, v in t.items() if "AUC" in f} == {0.5}
    sections, _ = our_figures(truth, systems["constant_section"], year)
    row = sections.set_index(["machine", "section"]).loc[key]
    columns = ["auc_source", "auc_target", "pauc", *DOMAIN_COLUMNS]
    assert row[columns].tolist() == pytest.approx([0.5] * len(columns), abs=TOLERANCE)


def parse_result_2020(text):
    """The 2020 evaluator's result CSV: {(machine, id): (AUC, pAUC)}, {machine: (average AUC, average pAUC)}."""
    ids, averages, machine = {}, {}, None
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 1:
            machine = row[0]
        elif row and row[0].isdigit():
            ids[(machine, int(row[0]))] = (float(row[1]), float(row[2]))
        elif row and row[0] == "Average":
            averages[machine] = (float(row[1]), float(row[2]))
    return ids, averages


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_figure_equals_the_official_2020_evaluator(make_golden, system):
    """2020: AUC and pAUC per machine ID on all its clips (no domains) and their arithmetic mean per machine
    type; the evaluator reports no overall score. Our sections are its machine IDs."""
    golden, truth, systems = golden_and_inputs(make_golden, 2020)
    theirs_ids, theirs_averages = parse_result_2020(str(golden[f"result/{system}"]))
    sections, summary = our_figures(truth.assign(target=0), systems[system], 2020)
    assert len(theirs_ids) == len(sections) == 4
    for row in sections.itertuples():
        assert (row.auc_mixed, row.pauc) == pytest.approx(theirs_ids[(row.machine, row.section)], abs=TOLERANCE)
    for machine, (auc, pauc) in theirs_averages.items():
        assert (summary.loc[machine, "auc"], summary.loc[machine, "pauc"]) == pytest.approx((auc, pauc), abs=TOLERANCE)
