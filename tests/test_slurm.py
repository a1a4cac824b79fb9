"""The Slurm job backend on a one-node cluster started on 127.0.0.1 (tools/slurm_local.sh).

Skipped where Slurm and munge are not installed (``cd tools && make`` installs them where it can);
the cluster is stopped at the end, its daemons checked gone."""

import os
import shutil
import socket
import subprocess

import pytest

from tests.conftest import SCRIPTS, run_recipe

TOOLS = SCRIPTS.parent / "tools"
MISSING = [p for p in ("sbatch", "squeue", "slurmctld", "slurmd", "munged") if shutil.which(p) is None]
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        bool(MISSING), reason=f"Slurm is not installed ({', '.join(MISSING)} missing): tools/slurm_local.sh install"
    ),
]


def _free_port_pair():
    """A port p with p + 1 free too (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two free neighbouring ports")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The environment of a running one-node cluster (SLURM_CONF, cmd_backend=slurm, a jobs config
    without GPUs); stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_PORT": str(_free_port_pair())}
    started = subprocess.run([TOOLS / "slurm_local.sh", "start", state], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr
    jobs_conf = state / "jobs.conf"
    # the shipped resources, less what this node lacks: GPUs (gres) and a memory request
    jobs_conf.write_text(f". {SCRIPTS / 'conf/slurm.conf'}\nslurm_gres=\nslurm_mem=\nslurm_cpus_per_task=1\n")
    env.update(SLURM_CONF=str(state / "slurm.conf"), cmd_backend="slurm", slurm_conf=str(jobs_conf))
    yield env
    subprocess.run([TOOLS / "slurm_local.sh", "stop", state], env=env, check=True)
    for daemon in ("slurmctld", "slurmd", "munged"):
        assert not (state / f"{daemon}.pid").exists()
    # nothing of this cluster runs on: every process that names its state folder is gone
    left = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes of the test cluster still run: {left}"


def _backend(env, *args, cwd=SCRIPTS):
    return subprocess.run(["utils/slurm.sh", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_tiny_recipe_through_slurm_gives_the_local_score(cluster, tiny_root, tiny_dump, tmp_path):
    # stages 1-2 (dump, lists) as jobs on the node; stages 3-6 on the session's tiny dump (read only)
    lists = ["--data_root", str(tiny_root), "--dumpdir", str(tmp_path / "dump"), "--stop_stage", "2"]
    run_recipe("baseline.sh", "--machines", "fan valve", "--stage", "1", *lists, env=cluster)
    assert (tmp_path / "dump/fan/lists/valid.txt").read_bytes() == (tiny_dump / "fan/lists/valid.txt").read_bytes()
    common = ["--machines", "fan valve", "--figures", "false", "--dumpdir", str(tiny_dump), "--stage", "3"]
    out = run_recipe("baseline.sh", *common, "--expdir", str(tmp_path / "exp"), "--nj", "2", env=cluster)
    assert "official score" in out  # the scorer's summary, shown from the job's Slurm output
    local = ["--expdir", str(tmp_path / "local")]  # the same dump, the local backend
    run_recipe("baseline.sh", *common, *local, env={**cluster, "cmd_backend": "local"})
    result = "only_fan+valve/baseline/features/score.csv"
    assert (tmp_path / "exp" / result).read_bytes() == (tmp_path / "local" / result).read_bytes()
    # each stage's log was written by its job on the node, with the local backend's header and footer
    log = (tmp_path / "exp/valve/baseline/detect.log").read_text()
    assert "asd_tools.bin.detect" in log and log.rstrip().endswith("with status 0")
    assert list((tmp_path / "exp/slurm_jobs").glob("train.*.sh"))  # one array job per per-machine stage


def test_a_failed_array_element_is_named_and_the_others_finish(cluster, tmp_path):
    logs = tmp_path / "NAME" / "step.log"
    done = _backend(cluster, "--max_jobs", "2", "NAME=a,b,c", logs, "bash", "-c", "echo step NAME; [ NAME != b ]")
    assert done.returncode == 1
    assert "ERROR: 1 of 3 jobs failed: b" in done.stderr
    assert "failed with status 1 (log: " + str(tmp_path / "b/step.log") in done.stderr
    for name in "ac":
        assert (tmp_path / name / "step.log").read_text().rstrip().endswith("with status 0")


def test_a_job_killed_on_its_node_is_reported_as_never_ending(cluster, tmp_path):
    log = tmp_path / "killed.log"
    done = _backend(cluster, log, "bash", "-c", "scancel $SLURM_JOB_ID; sleep 60")
    assert done.returncode == 1
    assert "ended without running to its end" in done.stderr
    assert "with status" not in log.read_text()  # the log has no footer: a re-run would not trust it


def test_a_missing_resources_file_is_named(cluster, tmp_path):
    done = _backend({**cluster, "slurm_conf": str(tmp_path / "none.conf")}, tmp_path / "x.log", "true")
    assert done.returncode == 1 and f"{tmp_path / 'none.conf'} is missing" in done.stderr


def test_ngpu_trains_one_model_in_the_tasks_of_one_job_with_srun(cluster, tiny_job, tmp_path):
    folder, _ = tiny_job
    stage_3 = ["--conf", "conf/tuning/asd_model.tiny.yaml", "--stage", "3", "--stop_stage", "3", "--ngpu", "2"]
    machines = ["--machines", "fan valve", "--only_machines", "fan"]
    run_recipe("asd.sh", *stage_3, *machines, "--dumpdir", str(folder / "dump"), "--expdir", str(tmp_path), env=cluster)
    expdir = tmp_path / "fan" / "asd_model.tiny"
    log = (expdir / "train.log").read_text()
    assert "srun --kill-on-bad-exit=1 python -m asd_tools.bin.train" in log
    assert "process group: 2 processes (gloo)" in log and (expdir / "train.done").exists()
    job = next((tmp_path / "slurm_jobs").glob("train.*.sh")).read_text()
    assert "--tasks 2" in job  # the job was asked for the 2 tasks that srun fills
