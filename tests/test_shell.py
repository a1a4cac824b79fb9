"""The recipe's option parser: --help lists options with defaults, unknown options and bad
stages fail; the local job backend's logs."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(*args, env=None):
    return subprocess.run(list(args), cwd=SCRIPTS, capture_output=True, text=True, env=env)


def test_help_lists_options_with_defaults():
    result = _run("./baseline.sh", "--help")
    assert result.returncode == 0
    assert "--stop_stage" in result.stdout and "[5]" in result.stdout
    assert "--machines" in result.stdout and "bearing fan gearbox" in result.stdout


def test_help_lists_no_declarations_as_options():
    result = _run("./job.sh", "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: ./job.sh")
    assert "--help_message" not in result.stdout and "--valid_stages" not in result.stdout
    assert "--valid_run_stages" not in result.stdout
    assert "Stages (--stage, --stop_stage): 1-2" in result.stdout
    assert "Run stages (--start_stage, --end_stage): 0-5" in result.stdout
    for declaration in ("help_message", "valid_stages"):
        result = _run("./job.sh", f"--{declaration}", "x")
        assert result.returncode != 0 and f"unknown option --{declaration}" in result.stderr


# Every stage option of every recipe script, with the range the script declares.
STAGE_OPTIONS = [
    ("job.sh", "stage", "stage", "1-2"),
    ("job.sh", "stop_stage", "stage", "1-2"),
    ("job.sh", "start_stage", "run stage", "0-5"),
    ("job.sh", "end_stage", "run stage", "0-5"),
    ("run.sh", "stage", "stage", "3-5"),
    ("run.sh", "stop_stage", "stage", "3-5"),
    ("baseline.sh", "stage", "stage", "0-5"),
    ("baseline.sh", "stop_stage", "stage", "0-5"),
    ("dgmix_job.sh", "stage", "stage", "0-7"),
    ("dgmix_job.sh", "stop_stage", "stage", "0-7"),
    ("local/data.sh", "stage", "stage", "0-2"),
    ("local/data.sh", "stop_stage", "stage", "0-2"),
    ("domain_classifier_job.sh", "stage", "stage", "1-2"),
    ("domain_classifier_job.sh", "stop_stage", "stage", "1-2"),
    ("domain_classifier_job.sh", "start_stage", "run stage", "0-5"),
]
# A script that wrongly accepted a bad stage must fail fast instead of running its stages:
# with an unknown job backend every ${train_cmd} stage stops at cmd.sh.
NO_JOBS = {**os.environ, "cmd_backend": "none"}


@pytest.mark.parametrize("script,option,what,valid", STAGE_OPTIONS)
@pytest.mark.parametrize("value,shown", [("foo", "foo"), ("9", "9"), ("", "''"), ("-1", "-1")])
def test_bad_stage_fails_naming_option_value_and_range(script, option, what, valid, value, shown):
    result = _run(f"./{script}", f"--{option}", value, env=NO_JOBS)
    assert result.returncode == 1
    assert result.stderr == f"./{script}: --{option} {shown} is not a {what} of this script (valid: {valid})\n"


@pytest.mark.parametrize(
    "script,first,last",
    [("job.sh", "stage", "stop_stage"), ("job.sh", "start_stage", "end_stage"), ("baseline.sh", "stage", "stop_stage")],
)
def test_last_stage_before_first_stage_fails(script, first, last):
    result = _run(f"./{script}", f"--{first}", "2", f"--{last}", "1", env=NO_JOBS)
    assert result.returncode == 1
    assert f"--{last} 1 comes before --{first} 2" in result.stderr


def test_unknown_option_and_positional_arguments_fail():
    result = _run("./baseline.sh", "--no_such_option", "1")
    assert result.returncode != 0 and "unknown option --no_such_option" in result.stderr
    result = _run("./baseline.sh", "stray")
    assert result.returncode != 0 and "unexpected arguments" in result.stderr
    result = _run("./baseline.sh", "--stage")
    assert result.returncode != 0 and "needs a value" in result.stderr


def test_bad_enum_value_fails():
    result = _run("./baseline.sh", "--data", "nonsense", "--stop_stage", "0")
    assert result.returncode != 0 and "--data must be" in result.stderr


def test_local_backend_writes_the_log_and_fails_loudly(tmp_path):
    log = tmp_path / "x.log"
    ok = _run("utils/run_local.sh", str(log), "echo", "hello")
    assert ok.returncode == 0 and "hello" in log.read_text()
    bad = _run("utils/run_local.sh", str(log), "bash", "-c", "echo boom; exit 3")
    assert bad.returncode == 3 and "boom" in bad.stderr and "status 3" in log.read_text()
