"""Stage logs under the local job backend: appended run by run, no progress bars in them, and
warnings on the terminal as well as in the log."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import TINY_MACHINES
from tests.test_training import _config

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
# The commands below import asd_tools from this checkout, as scripts/path.sh arranges for the recipes.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
BAR_TEXT = ("\r", "it/s", "s/it", "%|")  # what tqdm draws

WARNS = """
import logging
from asd_tools.utils import progress, setup_logging
setup_logging()
for _ in progress(range(50), desc="items", mininterval=0):
    pass
logging.info("every item done")
logging.warning("3 clips are not 10 s long")
"""


def run_local(log, *command, terminal=False):
    """``utils/run_local.sh <log> <command>``; returns (exit status, its stderr). With ``terminal``,
    its stderr is a pseudo-terminal, as when a user runs a recipe."""
    args = ["utils/run_local.sh", str(log), *command]
    if not terminal:
        result = subprocess.run(args, cwd=SCRIPTS, env=ENV, capture_output=True, text=True)
        return result.returncode, result.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = subprocess.Popen(args, cwd=SCRIPTS, env=ENV, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer has gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(), shown.decode(errors="replace")


def test_each_run_appends_under_its_own_header(tmp_path):
    log = tmp_path / "stage.log"
    assert run_local(log, "echo", "first run")[0] == 0
    assert run_local(log, "bash", "-c", "echo second run; exit 3")[0] == 3
    runs = log.read_text().split("# " + "-" * 78 + "\n")
    assert runs[0] == "" and len(runs) == 3
    first, second = runs[1:]
    assert first.startswith("# echo first\\ run\n# started at ") and " on " in first.splitlines()[1]
    assert "\nfirst run\n" in first and first.endswith("with status 0\n")
    assert second.startswith("# bash -c echo\\ second\\ run\\;\\ exit\\ 3\n")
    assert "\nsecond run\n" in second and second.endswith("with status 3\n")


def test_no_progress_bars_in_the_log_and_warnings_on_the_terminal_too(tmp_path):
    log = tmp_path / "dump.log"
    status, stderr = run_local(log, sys.executable, "-c", WARNS)
    assert status == 0, log.read_text()
    text = log.read_text()
    assert "every item done" in text and "WARNING: 3 clips are not 10 s long" in text
    assert not any(bar in text for bar in BAR_TEXT) and "items:" not in text
    # the warning also reaches run_local.sh's stderr (not a terminal here: no bar there either)
    assert "WARNING: 3 clips are not 10 s long" in stderr and "every item done" not in stderr
    assert not any(bar in stderr for bar in BAR_TEXT)

    # On a terminal the bar is drawn there, and still not in the log.
    status, shown = run_local(log, sys.executable, "-c", WARNS, terminal=True)
    assert status == 0
    assert "items: 100%" in shown and "50/50" in shown and "WARNING: 3 clips are not 10 s long" in shown
    second_run = log.read_text()[len(text) :]
    assert "WARNING: 3 clips are not 10 s long" in second_run
    assert not any(bar in second_run for bar in BAR_TEXT) and "items:" not in second_run


@pytest.mark.slow
def test_training_log_has_one_line_per_epoch_and_no_bars(tiny_dump, tmp_path):
    expdir = tmp_path / "exp"
    log = expdir / "train.log"
    status, shown = run_local(
        log,
        *(sys.executable, "-m", "asd_tools.bin.train", "--config", str(_config(tmp_path, 2))),
        *("--dumpdir", str(tiny_dump), "--machine", "fan", "--machines", " ".join(TINY_MACHINES)),
        *("--expdir", str(expdir), "--device", "cpu"),
        terminal=True,
    )
    text = log.read_text()
    assert status == 0, text
    assert re.findall(r"epoch (\d+): train ", text) == ["1", "2"]
    assert not any(bar in text for bar in BAR_TEXT) and "epoch 1/2" not in text
    assert "epoch 1/2" in shown and "epoch 2/2" in shown  # the bars went to the terminal


def test_direct_run_logs_everything_to_stderr_and_appends_to_log_file(tmp_path):
    log = tmp_path / "direct.log"
    script = f"from asd_tools.utils import setup_logging; import logging; setup_logging({str(log)!r}); "
    env = {k: v for k, v in ENV.items() if not k.startswith("ASD_CONSOLE")}
    for run in ("first", "second"):
        code = script + f"logging.info('{run} info'); logging.warning('{run} warning')"
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert f"INFO: {run} info" in result.stderr and f"WARNING: {run} warning" in result.stderr
        assert result.stderr.count(f"{run} warning") == 1  # stderr is the console: no copy
    assert re.findall(r"(?:INFO|WARNING): (\w+ \w+)", log.read_text()) == [
        "first info",
        "first warning",
        "second info",
        "second warning",
    ]
