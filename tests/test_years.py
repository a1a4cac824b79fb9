"""Every registered DCASE year: its names, its official metric by hand, and the tiny recipe end to end."""

import numpy as np
import pandas as pd
import pytest

from asd_tools.data.ground_truth import read_eval_data_list
from asd_tools.data.names import BadClipName, parse_clip_path
from asd_tools.datasets.registry import DATASET_SPECS, DEFAULT, dataset_spec
from asd_tools.scoring.metrics import summarise
from tests.conftest import recipe_dirs, run_recipe


@pytest.mark.parametrize(
    "layout, path, expected",
    [
        ("dcase2020", "dev/ToyCar/train/normal_id_01_00000000.wav", dict(section=1, domain="source", index=0)),
        ("dcase2020", "dev/fan/test/anomaly_id_06_00000263.wav", dict(section=6, state="anomaly", index=263)),
        ("dcase2020", "eval/ToyConveyor/test/id_05_00000514.wav", dict(section=5, state="unknown", dataset="eval")),
        ("dcase2021", "dev/fan/test/section_02_target_test_normal_0099.wav", dict(domain="target", attributes="")),
        ("dcase2021", "eval/gearbox/test/section_04_source_test_0199.wav", dict(domain="source", state="unknown")),
        ("dcase2022", "eval/valve/test/section_05_0199.wav", dict(section=5, domain="unknown")),
        ("dcase2023", "eval/bandsaw/train/section_00_source_train_normal_0989_vel_15.wav", dict(dataset="eval")),
        ("dcase2023", "dev/ToyCar/test/section_00_target_test_anomaly_0050_car_B1_spd_31V_mic_1.wav", dict(index=50)),
        ("dcase2024", "dev/gearbox/train/section_00_source_train_normal_0001_noAttribute.wav",
         dict(attributes="noAttribute")),
        ("dcase2024", "eval/3DPrinter/test/section_00_0200.wav", dict(index=200, state="unknown")),
        ("dcase2025", "eval/ToyPet/train/section_00_target_train_normal_0009_noAttribute.wav", dict(domain="target")),
    ],
)  # fmt: skip
def test_each_years_real_name_forms(layout, path, expected):
    info = parse_clip_path(path, dataset_spec(layout))
    for key, value in expected.items():
        assert getattr(info, key) == value, key


@pytest.mark.parametrize(
    "layout, path, message",
    [
        ("dcase2020", "dev/fan/train/normal_id_01_00000000.wav", "fan has no id 01 in the dev half"),  # an eval ID
        ("dcase2020", "dev/fan/train/section_00_source_train_normal_0000.wav", "fits no DCASE 2020 Task 2 name"),
        ("dcase2021", "eval/fan/test/section_03_0000.wav", "fits no DCASE 2021 Task 2 name"),  # 2021 keeps the domain
        (
            "dcase2023",
            "dev/bandsaw/train/section_00_source_train_normal_0000_a.wav",
            "not a machine type of the dev half",
        ),
        (
            "dcase2023",
            "eval/fan/train/section_00_source_train_normal_0000_a.wav",
            "not a machine type of the eval half",
        ),
        (
            "dcase2023",
            "dev/fan/train/section_01_source_train_normal_0000_a.wav",
            "fan has no section 01 in the dev half",
        ),
    ],
)
def test_each_years_wrong_names_are_named(layout, path, message):
    with pytest.raises(BadClipName, match=message):
        parse_clip_path(path, dataset_spec(layout))


def _section_rows(values):
    """A per-section table: one row per (machine, section) with the given metric columns."""
    rows = [dict(dataset="dev", machine=m, section=s, **v) for (m, s), v in values.items()]
    columns = ["auc_source", "auc_target", "pauc", "dom_auc_source", "dom_pauc_source"]
    columns += ["dom_auc_target", "dom_pauc_target", "auc_mixed"]
    return pd.DataFrame(rows).reindex(columns=["dataset", "machine", "section", *columns]).fillna(0.5)


def test_2021_official_score_is_the_hmean_of_per_domain_aucs_and_paucs():
    # fan 00: AUCs 0.8 (source), 0.4 (target), pAUCs 0.6, 0.5; valve 00: every value 0.5
    table = _section_rows(
        {
            ("fan", 0): dict(dom_auc_source=0.8, dom_auc_target=0.4, dom_pauc_source=0.6, dom_pauc_target=0.5),
            ("valve", 0): dict(dom_auc_source=0.5, dom_auc_target=0.5, dom_pauc_source=0.5, dom_pauc_target=0.5),
        }
    )
    summary = summarise(table, dataset_spec("dcase2021").metric).set_index("machine")
    # by hand: 8 / (1/0.8 + 1/0.4 + 1/0.6 + 1/0.5 + 4 * 2) = 8 / 15.41666...
    assert summary.loc["all", "official"] == pytest.approx(8 / 15.416666666666666)
    assert summary.loc["fan", "auc"] == pytest.approx(2 / (1 / 0.8 + 1 / 0.4))  # 0.5333...
    # the 2022 rule on the same table reads other columns (all 0.5 here)
    assert summarise(table, dataset_spec(DEFAULT).metric).set_index("machine").loc["all", "official"] == 0.5


def test_2020_score_is_the_arithmetic_mean_over_ids():
    table = _section_rows({("fan", 0): dict(auc_mixed=0.9, pauc=0.7), ("fan", 2): dict(auc_mixed=0.7, pauc=0.5)})
    summary = summarise(table, dataset_spec("dcase2020").metric).set_index("machine")
    assert summary.loc["fan", "auc"] == pytest.approx(0.8)  # the evaluator's per-type mean AUC
    assert summary.loc["fan", "pauc"] == pytest.approx(0.6)
    assert summary.loc["all", "official"] == pytest.approx(0.7)  # (0.9 + 0.7 + 0.7 + 0.5) / 4


def _e2e_machines(spec):
    """One machine type with both halves; first-shot years: one development and one evaluation type."""
    if spec.first_shot:
        return [spec.dev_machines[1], spec.eval_machines[0]]
    return [spec.dev_machines[0]]


def _expected_submission(spec, machines):
    stems = []
    for machine in machines:
        for unit in spec.units(machine, "eval"):
            if spec.submission == "machine_id":
                stems.append(f"{machine}_id_{unit:02d}")
            elif spec.submission == "section_domain":
                stems += [f"{machine}_section_{unit:02d}_{d}_test" for d in ("source", "target")]
            else:
                stems.append(f"{machine}_section_{unit:02d}_test")
    return sorted(f"{kind}_{stem}.csv" for stem in stems for kind in ("anomaly_score", "decision_result"))


def _ground_truth_names(spec, root, machine):
    """The anonymised evaluation names the year's ground truth lists for ``machine``."""
    gt = root / "ground_truth"
    if spec.ground_truth.format == "eval_data_list":
        return sorted(anon for _, anon, _, _ in read_eval_data_list(gt / spec.ground_truth.list_name).get(machine, []))
    files = gt.glob(f"ground_truth_data/ground_truth_{machine}_section_*.csv")
    return sorted(line.split(",")[0] for path in files for line in path.read_text().splitlines())


@pytest.mark.e2e
@pytest.mark.parametrize("layout", [name for name in DATASET_SPECS if name != DEFAULT])  # 2022: test_recipe_*
def test_tiny_recipe_in_each_years_layout(tmp_path, layout):
    """Synthetic data in the year's layout -> the year's official score table -> its submission files,
    whose rows are exactly the ground truth's names (the evaluators pair rows by sorted name)."""
    spec = dataset_spec(layout)
    machines = _e2e_machines(spec)
    args = ["--conf", "conf/tuning/baseline.yaml", "--data", "synthetic", "--layout", layout]
    args += ["--synthetic_size", "tiny", "--machines", " ".join(machines), "--figures", "false"]
    run_recipe("asd.sh", *args, *recipe_dirs(tmp_path))
    result = next(p.parent for p in (tmp_path / "exp").glob("*/baseline/features/score.md"))
    md = (result / "score.md").read_text()
    assert f"Official {spec.title} score" in md
    board = pd.read_csv(result / "score.csv")
    assert np.isfinite(board["dev_official"]).all() and np.isfinite(board["eval_official"]).all()
    team = result / "teams/asd_tools/baseline_features"
    assert sorted(p.name for p in team.iterdir()) == _expected_submission(spec, machines)
    for machine in machines:
        rows = [
            line for p in sorted(team.glob(f"anomaly_score_{machine}_*.csv")) for line in p.read_text().splitlines()
        ]
        names = [row.split(",")[0] for row in rows]
        assert sorted(names) == _ground_truth_names(spec, tmp_path / "data", machine)
        assert all(len(row.split(",")) == 2 and float(row.split(",")[1]) == float(row.split(",")[1]) for row in rows)
