"""Figures, report.md and the comparison command on the tiny end-to-end runs."""

import re
import shutil
import struct

import pandas as pd

from asd_tools.bin import compare, score
from asd_tools.scoring.plots import CURVES_SIZE, MAP_SIZE, figure_pixels, plot_roc, section_grid_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = 6  # tiny data has every section of DCASE 2022


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def expected_size(name):
    kind = name.split("_")[0]
    size = {"roc": section_grid_size(SECTIONS), "hist": section_grid_size(SECTIONS)}.get(kind)
    size = size or {"embedding": MAP_SIZE, "training": CURVES_SIZE}[kind]
    return figure_pixels(size)


def check_report(result, machines, kinds):
    """Every figure is a PNG of its size, referenced from report.md, and report.md names no other."""
    report = (result / "report.md").read_text()
    assert "Official DCASE 2022 Task 2 score" in report and "Per section" in report
    referenced = set(re.findall(r"!\[[^]]*\]\(([^)]+)\)", report))
    made = {p.relative_to(result).as_posix() for p in (result / "plots").glob("*.png")}
    assert referenced == made
    assert made == {f"plots/{kind}_{m}.png" for kind in kinds for m in machines}
    for name in made:
        assert png_size(result / name) == expected_size(name.split("/")[1]), name


def test_system1_report_has_every_figure(tiny_job):
    folder, _ = tiny_job
    result = folder / "exp/only_fan+valve/asd_model.tiny/checkpoint-best"
    check_report(result, ("fan", "valve"), ("roc", "hist", "embedding", "training"))
    history = pd.read_csv(folder / "exp/fan/asd_model.tiny/train_history.csv")
    assert history["epoch"].tolist() == [1, 2] and {"train_loss", "valid_loss"} <= set(history)


def test_figures_are_deterministic(tiny_job, tmp_path):
    folder, _ = tiny_job
    result = folder / "exp/only_fan+valve/asd_model.tiny/checkpoint-best"
    scores = pd.read_csv(folder / "exp/fan/asd_model.tiny/checkpoint-best/scores.csv")
    test = scores[scores["subset"] == "test"].copy()
    test["section"] = test["clip_id"].str.extract(r"section_(\d\d)").astype(int)[0]
    test["dataset"] = "dev"
    test["domain"] = "source"
    test["state"] = ["anomaly" if i % 2 else "normal" for i in range(len(test))]
    column = pd.read_csv(result / "score.csv")["postprocess"].iloc[0]
    plot_roc(test, column, "fan", tmp_path / "a.png")
    plot_roc(test, column, "fan", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_baseline_report_and_comparison_with_system1(tiny_job, tiny_baseline, capsys):
    folder, _ = tiny_job
    baseline = tiny_baseline[0] / "exp/only_fan+valve/baseline/features"
    check_report(baseline, ("fan", "valve"), ("roc", "hist", "embedding"))  # no training, no curves
    system1 = folder / "exp/only_fan+valve/asd_model.tiny"
    compare.main([str(baseline), str(system1)])
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "baseline/features" in header and "asd_model.tiny/checkpoint-best" in header
    assert "asd_model.tiny/checkpoint-2epochs" in header  # a tag folder stands for its checkpoints
    for row in ("data set", "machine types", "config", "checkpoint", "post-process", "dev official", "eval fan"):
        assert f"| {row} |" in out
    dev = next(line for line in out.splitlines() if line.startswith("| dev official |"))
    expected = pd.read_csv(baseline / "summary.csv").set_index(["dataset", "machine"]).loc[("dev", "all"), "official"]
    assert f"{100 * expected:.2f}" in dev.split("|")[2]


def test_scoring_without_figures_and_then_with_them(tiny_job, tmp_path, capsys):
    folder, _ = tiny_job
    shutil.copytree(folder / "exp/fan/asd_model.tiny", tmp_path / "exp/fan/asd_model.tiny")
    args = ["--expdir", str(tmp_path / "exp"), "--dumpdir", str(folder / "dump"), "--machines", "fan"]
    args += ["--tag", "asd_model.tiny", "--checkpoint", "checkpoint-best"]
    result = tmp_path / "exp/only_fan/asd_model.tiny/checkpoint-best"
    score.main([*args, "--figures", "false"])
    report = (result / "report.md").read_text()
    assert "Figures were not drawn" in report and "![" not in report
    assert not (result / "plots").exists()
    summary = pd.read_csv(result / "summary.csv")
    capsys.readouterr()
    score.main([*args, "--figures", "true"])  # the setting is part of the record: drawn now
    assert "up to date" not in capsys.readouterr().out
    check_report(result, ("fan",), ("roc", "hist", "embedding", "training"))
    pd.testing.assert_frame_equal(pd.read_csv(result / "summary.csv"), summary)  # figures change no number


def test_roc_of_unlabelled_and_one_class_sections_is_drawn_without_curves(tmp_path):
    """An evaluation section without ground truth is marked "no labels"; a domain whose normals are
    missing gets no curve (one class: no ROC), and neither stops the figure."""
    dev = dict(dataset="dev", section=0, domain="source")
    rows = [dict(dev, state="normal", s=0.1), dict(dev, state="anomaly", s=0.9)]
    rows += [dict(dataset="eval", section=1, domain="unknown", state="unknown", s=float(i)) for i in range(4)]
    plot_roc(pd.DataFrame(rows), "s", "fan", tmp_path / "roc.png")
    assert png_size(tmp_path / "roc.png") == figure_pixels(section_grid_size(2))
