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
    result = _run("./asd.sh", "--help")
    assert result.returncode == 0
    assert "--stop_stage" in result.stdout and "[6]" in result.stdout
    assert "--machines" in result.stdout and "default: every one of the data set" in result.stdout


def test_wrapper_help_lists_its_own_defaults_then_the_stage_script_options():
    result = _run("./baseline.sh", "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: ./baseline.sh")
    own, passed = result.stdout.split("Every other option goes to ./asd.sh:\n")
    assert "--conf" in own and "[conf/tuning/baseline.yaml]" in own
    assert "--conf " not in passed  # the wrapper's own option is not listed twice
    assert "--stop_stage" in passed and "[6]" in passed and "--machines" in passed


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


# Every stage option of every recipe script: the script that checks it (a wrapper passes the
# options it does not declare on to the script it wraps) and the range that script declares.
STAGE_OPTIONS = [
    ("asd.sh", "stage", "asd.sh", "stage", "0-6"),
    ("asd.sh", "stop_stage", "asd.sh", "stage", "0-6"),
    ("job.sh", "stage", "job.sh", "stage", "1-2"),
    ("job.sh", "stop_stage", "job.sh", "stage", "1-2"),
    ("job.sh", "start_stage", "job.sh", "run stage", "0-5"),
    ("job.sh", "end_stage", "job.sh", "run stage", "0-5"),
    ("run.sh", "stage", "run.sh", "stage", "3-5"),
    ("run.sh", "stop_stage", "run.sh", "stage", "3-5"),
    ("baseline.sh", "stage", "asd.sh", "stage", "0-6"),
    ("dgmix_job.sh", "stop_stage", "asd.sh", "stage", "0-6"),
    ("domain_classifier_job.sh", "stage", "job.sh", "stage", "1-2"),
    ("domain_classifier_job.sh", "start_stage", "job.sh", "run stage", "0-5"),
]
# A script that wrongly accepted a bad stage must fail fast instead of running its stages:
# with an unknown job backend every ${train_cmd} stage stops at cmd.sh.
NO_JOBS = {**os.environ, "cmd_backend": "none"}


@pytest.mark.parametrize("script,option,checker,what,valid", STAGE_OPTIONS)
@pytest.mark.parametrize("value,shown", [("foo", "foo"), ("9", "9"), ("", "''"), ("-1", "-1")])
def test_bad_stage_fails_naming_option_value_and_range(script, option, checker, what, valid, value, shown):
    result = _run(f"./{script}", f"--{option}", value, env=NO_JOBS)
    assert result.returncode == 1
    assert result.stderr == f"./{checker}: --{option} {shown} is not a {what} of this script (valid: {valid})\n"


@pytest.mark.parametrize(
    "script,first,last",
    [("job.sh", "stage", "stop_stage"), ("job.sh", "start_stage", "end_stage"), ("asd.sh", "stage", "stop_stage")],
)
def test_last_stage_before_first_stage_fails(script, first, last):
    result = _run(f"./{script}", f"--{first}", "2", f"--{last}", "1", env=NO_JOBS)
    assert result.returncode == 1
    assert f"--{last} 1 comes before --{first} 2" in result.stderr


def test_unknown_option_and_positional_arguments_fail():
    result = _run("./asd.sh", "--no_such_option", "1")
    assert result.returncode != 0 and "unknown option --no_such_option" in result.stderr
    result = _run("./baseline.sh", "--no_such_option", "1")  # passed on to asd.sh, which knows none such
    assert result.returncode != 0 and "./asd.sh: unknown option --no_such_option" in result.stderr
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


def test_bench_helpers_time_a_run_read_its_scores_and_name_a_failure(tmp_path):
    log = tmp_path / "run.log"
    good = "printf 'x\\n... all asd_model.tiny/checkpoint-best: official score dev 51.20, eval 49.00 -> a/score.md\\n'"
    script = (
        '. utils/bench.sh; timed_run "$1" sh -c "$2"; echo "seconds=${seconds}"; '
        "score_rows \"$1\" '| local | 2 |' '| s |'; timed_run \"$1\" sh -c 'echo boom; exit 3'; echo not reached"
    )
    result = _run("bash", "-c", script, "bash", str(log), good)
    assert result.returncode == 1 and "not reached" not in result.stdout
    assert "seconds=0" in result.stdout or "seconds=1" in result.stdout
    assert "| local | 2 | asd_model.tiny/checkpoint-best | dev 51.20, eval 49.00 | s |" in result.stdout
    assert "failed: sh -c echo boom; exit 3" in result.stderr and "boom" in result.stderr


def _one_line(result):
    """The one line a recipe prints for a mistake it catches before any stage: no usage text, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "usage" not in result.stderr.lower() and "Traceback" not in result.stderr
    return lines[0]


def _dirs(tmp_path):
    """--data_root, --dumpdir and --expdir in ``tmp_path``."""
    return [arg for name in ("data_root", "dumpdir", "expdir") for arg in (f"--{name}", str(tmp_path / name))]


def test_a_mistyped_machine_type_stops_before_any_stage_with_one_line(tmp_path):
    """Issue 36, fault 9: --machines Fan suggests fan, in one line, before stage 0 makes anything."""
    dirs = _dirs(tmp_path)
    line = _one_line(_run("./asd.sh", "--machines", "Fan valve", "--synthetic_size", "tiny", *dirs))
    assert "unknown machine type(s) 'Fan' (did you mean 'fan'?) in dcase2022; known: " in line
    assert not any(tmp_path.iterdir())


def test_a_config_that_does_not_load_stops_before_any_stage_with_one_line(tmp_path):
    """Issue 36, fault 9: a YAML syntax error in --conf is one line before stage 0, not a traceback in stage 3's log."""
    conf = tmp_path / "broken.yaml"
    conf.write_text("system: baseline\nlogmel: {n_mels: 64\ndetect: {}\n")
    dirs = _dirs(tmp_path)
    line = _one_line(_run("./asd.sh", "--conf", str(conf), "--machines", "fan", "--synthetic_size", "tiny", *dirs))
    assert f"{conf}: not valid YAML at line 3, column 7" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml"]


def test_an_interrupted_job_array_stops_its_jobs_before_removing_their_status_folder(tmp_path):
    """Issue 36, fault 9: Ctrl-C (SIGINT to the recipe's process group) during a stage of several machine
    types. The jobs (background jobs of a script, which ignore SIGINT) must be stopped, and their status
    folder removed only after they have ended, not written into after it is gone."""
    import signal
    import time

    mark = tmp_path / "mark"
    job = f"touch {mark}.started.NAME; for i in $(seq 30); do sleep 0.1; done; touch {mark}.finished.NAME; exit 1"
    proc = subprocess.Popen(
        ["utils/run_local.sh", "--max_jobs", "2", "NAME=a,b", str(tmp_path / "NAME.log"), "bash", "-c", job],
        cwd=SCRIPTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as the terminal's foreground group is
        # Ctrl-C's default action, as under a terminal: a pytest-xdist worker may ignore SIGINT, and a shell
        # that starts with a signal ignored can never trap it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not all(Path(f"{mark}.started.{name}").exists() for name in "ab"):  # both jobs are running
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)  # returns once every process holding its stderr has ended
    assert proc.returncode == 130
    assert "No such file or directory" not in stderr, stderr
    assert not list(tmp_path.glob("mark.finished.*"))  # the interrupt stopped the jobs
