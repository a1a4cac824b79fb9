"""bin/benchmark: its systems come from the registry, and its step figures run (their values are not tested:
speed figures belong in docs/benchmarks.md, measured with the command there)."""

import re

import pytest

from asd_tools.bin import benchmark
from asd_tools.systems.registry import SYSTEMS
from tests.conftest import CONF, TINY_MACHINES


def _figures(capsys, *args):
    benchmark.main(list(args))
    return dict(re.findall(r"^([a-z_]+): (.+)$", capsys.readouterr().out, flags=re.MULTILINE))


def test_the_system_choices_are_the_registry(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--help"])
    choices = re.search(r"--system \{([^}]*)\}", capsys.readouterr().out).group(1)
    assert sorted(choices.split(",")) == sorted(SYSTEMS)


def test_a_system_that_is_not_the_configs_is_one_line(tiny_dump, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(
            ["--config", str(CONF / "baseline.yaml"), "--dumpdir", str(tiny_dump), "--machine", "fan"]
            + ["--machines", " ".join(TINY_MACHINES), "--system", "dgmix"]
        )
    err = capsys.readouterr().err
    assert "--system dgmix: " in err and "is a baseline config; give --system baseline" in err


@pytest.mark.slow
def test_model_only_step_rate_beside_the_full_one(tiny_dump, capsys):
    figures = _figures(
        capsys,
        *["--config", str(CONF / "asd_model.tiny.yaml"), "--dumpdir", str(tiny_dump), "--machine", "fan"],
        *["--machines", " ".join(TINY_MACHINES), "--device", "cpu", "--steps", "2", "--model_only"],
    )
    assert float(figures["train_model_only_samples_per_s"]) > 0 and float(figures["train_samples_per_s"]) > 0
    assert "loader_share_of_step" in figures
    assert "loader_samples_per_s" not in figures and "embed_windows_per_s" not in figures  # --model_only: steps only


@pytest.mark.slow
def test_a_system_without_figures_of_its_own_is_timed_through_its_stages(tiny_dump, capsys):
    figures = _figures(
        capsys,
        *["--config", str(CONF / "baseline.yaml"), "--dumpdir", str(tiny_dump), "--machine", "fan"],
        *["--machines", " ".join(TINY_MACHINES), "--device", "cpu"],
    )
    assert figures["embed_checkpoints"] == "1" and float(figures["embed_windows_per_s"]) > 0
    assert "train_stage_seconds" in figures
