"""Stage logs under the local job backend: appended run by run."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
# The commands below import asd_tools from this checkout, as scripts/path.sh arranges for the recipes.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_local(log, *command):
    """``utils/run_local.sh <log> <command>``; returns (exit status, its stderr)."""
    result = subprocess.run(
        ["utils/run_local.sh", str(log), *command], cwd=SCRIPTS, env=ENV, capture_output=True, text=True
    )
    return result.returncode, result.stderr


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
