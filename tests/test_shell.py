"""The recipe's option parser: --help lists options with defaults, unknown options fail."""

import subprocess
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(*args):
    return subprocess.run(list(args), cwd=SCRIPTS, capture_output=True, text=True)


def test_help_lists_options_with_defaults():
    result = _run("./baseline.sh", "--help")
    assert result.returncode == 0
    assert "--stop_stage" in result.stdout and "[5]" in result.stdout
    assert "--machines" in result.stdout and "bearing fan gearbox" in result.stdout


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
