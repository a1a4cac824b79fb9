"""Multi-process training under torchrun (gloo, CPU): N processes are N-fold gradient accumulation.

Two processes with grad_accum 1 must give the weights of one process with grad_accum 2 and batch seeds:
the same batches per optimiser step, the same random draws per batch, gradients averaged over the
processes instead of accumulated. The 1-process run without batch seeds and accumulation shows that the
tolerance separates runs that differ.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asd_tools.artefacts import LAST
from asd_tools.training.trainer import batch_seed, whole_steps
from tests.conftest import TINY_MACHINES, edited_config

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    "OMP_NUM_THREADS": "1",  # each process one thread: the 2 processes share this machine's cores
}
# float32 gradients averaged as (g0 + g1) / 2 in one process and accumulated as g0 / 2 + g1 / 2 in the other
# could differ in the last bits (on this CPU they are bit-identical: measured difference 0.0; the plain
# 1-process run differs by 6.3e-3)
TOLERANCE = 1e-5


def _train(config, dumpdir, expdir, processes=1):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*(launcher if processes > 1 else [sys.executable]), "-m", "asd_tools.bin.train"]
    command += ["--config", str(config), "--dumpdir", str(dumpdir), "--machine", "fan"]
    command += ["--machines", " ".join(TINY_MACHINES), "--expdir", str(expdir), "--device", "cpu"]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def _parameters(expdir, model_names):
    state = torch.load(Path(expdir) / LAST, map_location="cpu", weights_only=True)["model"]
    return {k: state[k] for k in model_names}


def _max_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_processes_give_the_weights_of_one_with_twice_the_accumulation(tiny_dump, tmp_path):
    def config(name, **edits):
        return edited_config(tmp_path / f"{name}.yaml", "asd_model.tiny.yaml", train__save_interval_epochs=100, **edits)

    two = tmp_path / "two_processes"
    log = _train(config("two"), tiny_dump, two, processes=2)
    assert "2 processes (gloo)" in log and "2 processes)" in log
    one = tmp_path / "one_process"
    _train(config("one", train__grad_accum=2, train__batch_seeds=True), tiny_dump, one)
    plain = tmp_path / "plain"
    _train(config("plain"), tiny_dump, plain)

    from asd_tools.config import load_config
    from asd_tools.data.corpus import Corpus
    from asd_tools.systems.serial_oe.config import SerialOEConfig
    from asd_tools.systems.serial_oe.recipe import make_model

    cfg = load_config(one / "config.yaml", SerialOEConfig)
    names = [k for k, _ in make_model(cfg, Corpus(tiny_dump).sections("fan")).named_parameters()]
    weights = {run: _parameters(run, names) for run in (two, one, plain)}
    assert _max_difference(weights[two], weights[one]) < TOLERANCE
    assert _max_difference(weights[two], weights[plain]) > 100 * TOLERANCE  # a different run is far off
    # only the main process wrote: one history, one finished marker, the config and classes
    assert (two / "train.done").exists() and (two / "train_history.csv").exists()
    last = torch.load(two / LAST, map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and last["step"] == torch.load(one / LAST, weights_only=True)["step"]


def test_a_plan_is_padded_to_whole_steps_and_batch_seeds_do_not_depend_on_the_process():
    assert whole_steps([1, 2, 3], 2) == [1, 2, 3, 1]
    assert whole_steps([1], 4) == [1, 1, 1, 1] and whole_steps([1, 2], 2) == [1, 2]
    seeds = {batch_seed(0, epoch, index) for epoch in (1, 2) for index in range(50)}
    assert len(seeds) == 100 and batch_seed(0, 1, 3) == batch_seed(0, 1, 3) != batch_seed(1, 1, 3)


def test_outside_torchrun_the_world_is_one_process():
    from asd_tools.training import distributed

    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.init("cpu") == "cpu"  # no WORLD_SIZE: nothing to join
    distributed.barrier()
    distributed.average_gradients([torch.nn.Parameter(torch.ones(2))])  # a no-op, no process group


def test_asd_sh_ngpu_trains_each_model_under_torchrun(tiny_job, tmp_path):
    from tests.conftest import SCRIPTS, run_recipe

    folder, _ = tiny_job
    stage_3 = ["--conf", "conf/tuning/asd_model.tiny.yaml", "--stage", "3", "--stop_stage", "3"]
    dirs = ["--dumpdir", str(folder / "dump"), "--expdir", str(tmp_path / "exp")]
    machines = ["--machines", " ".join(TINY_MACHINES), "--only_machines", "fan"]
    run_recipe("asd.sh", *stage_3, "--ngpu", "2", *machines, *dirs)
    expdir = tmp_path / "exp" / "fan" / "asd_model.tiny"
    log = (expdir / "train.log").read_text()
    assert "torch.distributed.run --standalone --nproc_per_node 2" in log and "2 processes (gloo)" in log
    assert (expdir / "train.done").exists() and (expdir / LAST).exists()
    bad = subprocess.run(["./asd.sh", *stage_3, "--ngpu", "two", *dirs], cwd=SCRIPTS, capture_output=True, text=True)
    assert bad.returncode != 0 and "--ngpu must be a positive integer, not 'two'" in bad.stderr


def test_an_srun_step_of_several_tasks_gives_torchruns_variables():
    from asd_tools.training.distributed import slurm_environment

    step = {"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "20007"}
    env = slurm_environment({**step, "SLURM_LAUNCH_NODE_IPADDR": "10.0.0.5"})
    assert env == {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "20007"}
    assert slurm_environment({**step, "SLURM_STEP_NUM_TASKS": "1"}) == {}  # one task: no group
    assert slurm_environment({**step, "WORLD_SIZE": "2"}) == {}  # torchrun's own variables win
