"""tools/gpu_check.sh on a CPU: its options, its plan (--dry-run), its exit without CUDA; and the logic of
asd_tools/bin/gpu_check.py (the plan from the systems registry, the recipe checks, the fp32 comparison and
its tolerance, the summary table). The steps themselves need a GPU: they are not run here."""

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from asd_tools.bin import gpu_check
from asd_tools.bin.gpu_check import CheckFailed
from asd_tools.scoring.submission import write_submission
from asd_tools.systems.base import System
from asd_tools.systems.registry import SYSTEMS, system_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
EIGHT_MINUTES = 480


def _run(*args, env=None, cwd=ROOT):
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """(outdir, the result of --dry-run with it): one run for the plan's tests (it imports torch)."""
    outdir = tmp_path_factory.mktemp("gpu_check") / "out"
    return outdir, _run("--dry-run", "--outdir", str(outdir))


def test_help_names_every_option():
    result = _run("--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage:")
    for option in ("--dry-run", "--outdir", "--steps", "--help"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["--steps", "1,7"], "--steps takes step numbers 1-5"),
        (["--steps"], "--steps needs a value"),
        (["--outdir"], "--outdir needs a value"),
    ],
)
def test_bad_options_are_one_clear_line(args, message):
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_without_cuda_it_exits_with_one_line(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides every GPU from torch, so this holds on a GPU machine too
    result = _run("--outdir", str(tmp_path / "out"), env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device visible:" in lines[0] and "CUDA_VISIBLE_DEVICES=''" in lines[0]
    assert not (tmp_path / "out" / "summary.md").exists()


def _plan_steps(stdout):
    """step name -> the commands the dry run lists under it."""
    steps, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("step "):
            current = " ".join(line.split()[:3])
            steps[current] = []
        elif line.startswith("    $ ") and current:
            steps[current].append(line[6:])
    return steps


def test_dry_run_lists_every_step_with_its_commands_and_runs_nothing(dry_run):
    outdir, result = dry_run
    assert result.returncode == 0, result.stderr
    steps = _plan_steps(result.stdout)
    numbers = {name.split()[1] for name in steps}
    assert numbers == {"0", "1", "2", "3", "4", "5"}
    assert all(steps[name] for name in steps)  # every step lists its commands
    assert any(
        "bin.benchmark --config conf/tuning/asd_model.000.yaml" in c and "--device cuda" in c
        for c in steps["step 3 benchmark_000"]
    )
    memory = steps["step 4 dgmix_memory"]
    assert any("--grad_accum 1" in c for c in memory) and any("--grad_accum 4" in c for c in memory)
    assert any("--ngpu 2" in c for c in steps["step 5 ngpu2_nccl"]) and "skipped: 1 GPU" in result.stdout
    fp32 = steps["step 2 fp32_cpu_vs_cuda"]
    assert any("--device cpu" in c for c in fp32) and any("--device cuda" in c for c in fp32)
    assert result.stdout.rstrip().endswith(gpu_check.table_header())
    assert not outdir.exists()  # a dry run writes nothing


def test_dry_run_plans_every_registered_system_on_cuda(dry_run):
    _, result = dry_run
    steps = _plan_steps(result.stdout)
    for name, cls in SYSTEMS.items():
        wrapper, config = gpu_check.RECIPE, f"conf/tuning/{cls.tiny_config}"
        commands = steps[f"step 1 {name}"]
        assert any(c.startswith(f"./{wrapper} --conf {config} --device cuda") for c in commands)
        assert any("check-recipe" in c and f"--tag {Path(config).stem}" in c for c in commands)


def test_the_time_limits_fit_in_eight_minutes_on_one_gpu(dry_run):
    _, result = dry_run
    limits = dict(re.findall(r"^step (\d \w+) \(limit (\d+) s", result.stdout, flags=re.MULTILINE))
    assert len(limits) == 1 + len(SYSTEMS) + 4
    one_gpu = [int(v) for k, v in limits.items() if k != "5 ngpu2_nccl"]  # one GPU: step 5 is skipped
    assert sum(one_gpu) <= EIGHT_MINUTES


def test_steps_selects_the_steps(tmp_path):
    result = _run("--dry-run", "--steps", "3", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert list(_plan_steps(result.stdout)) == ["step 3 benchmark_000"]


# ---------------------------------------------------------------------------------- the plan


def test_a_system_without_a_tiny_config_fails_the_plan():
    class NewSystem(System):
        name = "new_system"

    with pytest.raises(CheckFailed, match="no tiny config for registered system.*new_system.*tiny_config"):
        gpu_check.tiny_recipes(systems={**SYSTEMS, "new_system": NewSystem})


def test_each_tiny_recipe_runs_its_system_and_says_its_precision():
    rows = gpu_check.tiny_recipes()
    assert [row[0] for row in rows] == list(SYSTEMS)
    for name, wrapper, config, _ in rows:
        assert (gpu_check.SCRIPTS / wrapper).exists()
        assert system_name(gpu_check.SCRIPTS / config) == name
    by_system = {row[0]: row[3] for row in rows}
    assert by_system["serial_oe"] == "autocast (train.amp: bfloat16)"
    assert by_system["baseline"] == "fp32 (no autocast)"


def test_precision_counts_the_schema_default_of_a_key_left_out(tmp_path):
    from asd_tools.config import read_config

    data = read_config(gpu_check.SCRIPTS / "conf/tuning/asd_model.tiny.yaml")
    del data["train"]["amp"], data["train"]["amp_dtype"]
    path = tmp_path / "no_amp_key.yaml"
    path.write_text(yaml.safe_dump(data))
    assert gpu_check.precision(path) == "autocast (train.amp: bfloat16)"  # the schema's default: on, bf16


def test_the_fp32_config_turns_off_autocast_and_dropout(tmp_path):
    out = tmp_path / "asd_model.tiny_fp32.yaml"
    gpu_check.main(
        ["fp32-config", "--config", str(gpu_check.SCRIPTS / "conf/tuning/asd_model.tiny.yaml"), "--out", str(out)]
    )
    assert gpu_check.precision(out) == "fp32 (no autocast)"
    from asd_tools.config import read_config

    data = read_config(out)
    assert data["model"]["params"]["dropout"] == 0.0 and data["train"]["epochs"] == 2  # the rest is tiny's


# ---------------------------------------------------------------------------------- the checks


def _manifest():
    rows = []
    for machine in ("fan", "valve"):
        for dataset, sections in (("dev", (0, 1)), ("eval", (3, 4))):
            for section in sections:
                for i in range(3):
                    name = f"section_{section:02d}_{i:04d}.wav"
                    rows.append((machine, dataset, "test", section, "source", name))
    return pd.DataFrame(rows, columns=["machine", "dataset", "split", "section", "domain", "file_name"])


def _submission(folder, manifest, scores=None):
    test = manifest[manifest["dataset"] == "eval"].copy()
    test["score"] = np.arange(len(test), dtype=float) if scores is None else scores
    return write_submission(folder, test, {"fan": 2.0, "valve": 2.0})


def test_complete_submission_files_pass_and_each_defect_fails(tmp_path):
    manifest = _manifest()
    expected = gpu_check.expected_submission(manifest, "section")
    assert len(expected) == 2 * 2 * 2  # 2 machine types x 2 evaluation sections x (scores, decisions)
    written = _submission(tmp_path / "ok", manifest)
    gpu_check.check_submission(tmp_path / "ok", expected)
    written[0].unlink()
    with pytest.raises(CheckFailed, match="missing"):
        gpu_check.check_submission(tmp_path / "ok", expected)
    _submission(tmp_path / "nan", manifest, scores=[np.nan] + [0.0] * 11)
    with pytest.raises(CheckFailed, match="non-finite anomaly scores"):
        gpu_check.check_submission(tmp_path / "nan", expected)
    _submission(tmp_path / "short", manifest)
    path = tmp_path / "short" / "anomaly_score_valve_section_04_test.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(CheckFailed, match="not the 3 evaluation clips"):
        gpu_check.check_submission(tmp_path / "short", expected)


def _results(folder, checkpoints):
    """A results folder as stage 6 writes it, reduced to what the comparison reads: checkpoint ->
    (chosen post-process, {post-process: (dev, eval) official as fractions})."""
    for checkpoint, (chosen, board) in checkpoints.items():
        out = Path(folder) / checkpoint
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({"postprocess": chosen}))
        rows = [{"postprocess": p, "dev_official": d, "eval_official": e} for p, (d, e) in board.items()]
        pd.DataFrame(rows).to_csv(out / "score.csv", index=False)
        pd.DataFrame({"dataset": ["dev"], "machine": ["all"], "official": [0.5]}).to_csv(
            out / "summary.csv", index=False
        )
    return Path(folder)


def test_fp32_scores_agree_within_the_tolerance_of_the_cpu_choice(tmp_path):
    cpu = _results(tmp_path / "cpu", {"checkpoint-best": ("a", {"a": (0.700, 0.600), "b": (0.500, 0.500)})})
    # b is far apart, but the comparison is of the CPU run's choice, a: 1.5 and 1.0 points
    cuda = _results(tmp_path / "cuda", {"checkpoint-best": ("b", {"a": (0.715, 0.590), "b": (0.900, 0.100)})})
    line = gpu_check.compare_official(cpu, cuda, tolerance=2.0)
    assert "dev 70.00/71.50 eval 60.00/59.00" in line and "largest |diff| 1.50 <= 2.0" in line
    with pytest.raises(CheckFailed, match="largest \\|diff\\| 1.50 > 1.0"):
        gpu_check.compare_official(cpu, cuda, tolerance=1.0)


def test_a_checkpoint_scored_on_the_cpu_only_fails_the_comparison(tmp_path):
    board = {"a": (0.7, 0.6)}
    cpu = _results(tmp_path / "cpu", {"checkpoint-1epochs": ("a", board), "checkpoint-2epochs": ("a", board)})
    cuda = _results(tmp_path / "cuda", {"checkpoint-1epochs": ("a", board)})
    with pytest.raises(CheckFailed, match="checkpoint-2epochs: not scored on CUDA"):
        gpu_check.compare_official(cpu, cuda)


def test_the_default_tolerance_is_stated_in_points():
    assert 0 < gpu_check.FP32_TOLERANCE_POINTS <= 5  # official-score points of 100: the docstring says why


# ---------------------------------------------------------------------------------- benchmarks and the table

BENCHMARK_OUTPUT = """2026-12-07 12:00:00,000 (benchmark:1) INFO: a log line: not a figure
batch_size: 128
train_samples_per_s: 300.00
train_model_only_samples_per_s: 400.00
loader_share_of_step: 0.25
embed_windows_per_s: 2000.00
device: NVIDIA H100 80GB HBM3
peak_gpu_memory_gib: 10.50
"""


def test_the_benchmark_cell_shows_the_loader_share_and_the_peak_memory():
    figures = gpu_check.benchmark_figures(BENCHMARK_OUTPUT)
    assert figures["device"] == "NVIDIA H100 80GB HBM3" and figures["batch_size"] == 128.0
    assert gpu_check.serial_oe_summary(figures) == (
        "model-only 400 samples/s, full 300 samples/s (loader 25 % of a step); embedding 2000 windows/s; "
        "peak GPU 10.50 GiB"
    )


def test_an_out_of_memory_run_is_a_result_and_a_crash_a_failure(tmp_path):
    ok = tmp_path / "step4_grad_accum4.txt"
    ok.write_text("batch_size: 2048\ngrad_accum: 4\nmicro_batch: 512\npeak_gpu_memory_gib: 20.00\n")
    oom = tmp_path / "step4_grad_accum1.txt"
    oom.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 8.00 GiB\n")
    assert gpu_check.dgmix_memory_summary([oom, ok]) == (
        "step4_grad_accum1: out of GPU memory; batch 2048, grad_accum 4 (micro-batch 512): peak GPU 20.00 GiB"
    )
    crash = tmp_path / "crash.txt"
    crash.write_text("Traceback (most recent call last):\nRuntimeError: something else\n")
    with pytest.raises(CheckFailed, match="no peak_gpu_memory_gib"):
        gpu_check.dgmix_memory_summary([crash, ok])


def test_the_summary_table_has_one_line_per_check_and_counts_statuses(tmp_path):
    tsv = tmp_path / "summary.tsv"
    gpu_check.record(tsv, 1, "serial_oe", "PASS", 31, "dev 70.83 | eval\t61.42\n(best)", "logs/a.log")
    gpu_check.record(tsv, 5, "ngpu2_nccl", "SKIP", 0, "skipped: 1 GPU", "logs/b.log")
    with pytest.raises(CheckFailed, match="status 'OK'"):
        gpu_check.record(tsv, 2, "x", "OK", 0, "", "")
    rows = pd.read_csv(tsv, sep="\t", dtype=str)
    assert list(rows.columns) == gpu_check.TSV_COLUMNS and len(rows) == 2
    assert rows.loc[0, "result"] == "dev 70.83 | eval 61.42 (best)"  # one row per line
    assert [p.name for p in tmp_path.iterdir()] == ["summary.tsv"]  # no temporary file left
    out = tmp_path / "summary.md"
    gpu_check.main(["table", "--tsv", str(tsv), "--out", str(out), "--title", "H100, commit abc"])
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == "# GPU check: H100, commit abc"
    assert lines[2] == gpu_check.table_header() and lines[3] == "|---|---|---|---|---|---|"
    assert lines[4] == "| 1 | serial_oe | PASS | 31 | dev 70.83 \\| eval 61.42 (best) | logs/a.log |"
    assert lines[5].startswith("| 5 | ngpu2_nccl | SKIP |") and lines[-1] == "1 PASS, 0 FAIL, 1 SKIP"
