"""Shared fixtures: a tiny synthetic data set and a tiny System 1 run, made once per test session."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Tests never reach a model hub; read at import time by huggingface_hub, so set it first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Each xdist worker, and every recipe it starts, gets its share of the cores (read by OpenMP when torch
# or sklearn first loads it, so before any import below). With one thread per core per worker, two
# workers that each run a 2-thread OpenMP loop on 2 cores spin-wait on each other: sklearn's t-SNE of
# 108 points took 10.6 s instead of 0.8 s on this project's 2-core machine under load.
os.environ.setdefault(
    "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
)

import numpy as np
import pytest
import soundfile as sf
import yaml

from asd_tools.config import read_config, set_keys
from asd_tools.constants import SAMPLE_RATE
from asd_tools.data.dump import dump_machine
from asd_tools.data.split import write_lists
from asd_tools.data.synthetic import generate

TINY_MACHINES = ("fan", "valve")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CONF = SCRIPTS / "conf" / "tuning"


def run_recipe(script, *args, cwd=SCRIPTS, env=None):
    """Run a recipe script (shell, or Python with this interpreter) and return its output."""
    command = [sys.executable, script] if script.endswith(".py") else [f"./{script}"]
    result = subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**(env or os.environ), "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def recipe_dirs(tmp_path):
    """Options that keep a test's data, dump and experiments inside its temporary folder."""
    return [
        "--data_root",
        str(tmp_path / "data"),
        "--dumpdir",
        str(tmp_path / "dump"),
        "--expdir",
        str(tmp_path / "exp"),
    ]


def shipped_configs(pattern="*.yaml") -> list:
    """The configs of conf/tuning/ that the project ships (the files git tracks), sorted.

    Tests that pin the shipped configs' contents select these; a user's own config in the same
    folder is only required to load (test_config). Outside a git checkout every file counts.
    """
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", pattern], cwd=CONF, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(CONF.glob(pattern))
    return sorted(CONF / name for name in out.split())


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Group the tests that share an expensive fixture onto one xdist worker (``make test`` runs
    ``-n auto --dist loadgroup``), so that it is built once: the session-wide tiny recipe run in one
    group, a module-scoped fixture's tests in their module's group. Tests that use the tiny recipe
    run are end-to-end tests (marker ``e2e``)."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        scopes = {name: defs[-1].scope for name, defs in (definitions.name2fixturedefs.items() if definitions else [])}
        if "tiny_job" in scopes:  # tiny_baseline too: it is made from the tiny job's data
            item.add_marker(pytest.mark.xdist_group("tiny_job"))
            item.add_marker(pytest.mark.e2e)
        elif "module" in scopes.values():
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_collection_finish(session):
    """Stop a ``--dist loadgroup`` run whose groups would not reach the scheduler.

    pytest-xdist marks a grouped test by appending ``@<group>`` to its id; a pytest whose ids cannot be
    changed that way (9.2 with xdist 3.8) drops every group silently, and each worker then builds the
    session's tiny recipe run again: minutes lost with no error. Say so instead.
    """
    if not getattr(session.config.option, "loadgroup", False):  # xdist's workers under --dist loadgroup
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        message = (
            f"pytest {pytest.__version__} with this pytest-xdist drops the xdist groups of {len(lost)} tests "
            f"(e.g. {lost[0]}); install the versions setup.py pins: pip install -e '.[test]'"
        )
        print(message, file=sys.stderr)  # a worker's exit reason alone may not reach the terminal
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def one_thread():
    """torch on one thread, as tools/golden/make_golden.py ran: the same order of every sum (and much faster
    on a shared CPU) for the golden comparisons."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def edited_config(path, name, **changes):
    """Shipped config ``name`` (its bases merged) with ``section__key=value`` changes, written to ``path``.

    Edit the resolved data, not the file's text: a shipped config may hold only its differences
    from a base, which a copy elsewhere could not find.
    """
    data = set_keys(read_config(CONF / name), {key.replace("__", "."): value for key, value in changes.items()})
    path = Path(path)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def dumped_layout(tmp_path_factory, layout, machines, name):
    """(data root, dump folder with lists) of the tiny synthetic set of ``machines`` in ``layout``."""
    root = tmp_path_factory.mktemp(f"{name}_data")
    generate(root, "tiny", machines, seed=0, jobs=2, layout=layout)
    dumpdir = tmp_path_factory.mktemp(f"{name}_dump")
    for machine in machines:
        dump_machine(root, machine, dumpdir, layout=layout)
        write_lists(dumpdir, machine, 0.15, 0)
    return root, dumpdir


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """The tiny synthetic set for two machine types (DCASE 2022 layout)."""
    root = tmp_path_factory.mktemp("synthetic_tiny")
    generate(root, "tiny", TINY_MACHINES, seed=0, jobs=2)
    return root


@pytest.fixture(scope="session")
def tiny_dump(tiny_root, tmp_path_factory):
    """The tiny set dumped, with its training/validation/test lists."""
    dumpdir = tmp_path_factory.mktemp("dump")
    for machine in TINY_MACHINES:
        dump_machine(tiny_root, machine, dumpdir)
        write_lists(dumpdir, machine, 0.15, 0)
    return dumpdir


def write_wav(path, seconds=3.0, rate=SAMPLE_RATE, channels=1, seed=0, subtype="PCM_16", silent=False):
    """A noise clip (or a silent one) at ``path``; returns the int16 samples written."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    data = np.zeros((n, channels)) if silent else rng.normal(0, 0.1, (n, channels))
    pcm = np.clip(np.round(data * 32768), -32768, 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, pcm if channels > 1 else pcm[:, 0], rate, subtype=subtype)
    return pcm


def make_layout(root, machine="fan", n_train=8, n_test=2, seconds=3.0):
    """A minimal hand-made DCASE 2022 folder (dev only) for dump tests."""
    for i in range(n_train):
        write_wav(root / "dev" / machine / "train" / f"section_00_source_train_normal_{i:04d}_a_1.wav", seconds, seed=i)
    for i in range(n_test):
        for state in ("normal", "anomaly"):
            name = f"section_00_source_test_{state}_{i:04d}_a_1.wav"
            write_wav(root / "dev" / machine / "test" / name, seconds, seed=100 + i)
    return root


@pytest.fixture(scope="session")
def tiny_job(tmp_path_factory):
    """``job.sh`` with the tiny config on tiny data for fan and valve: (folder, its output)."""
    folder = tmp_path_factory.mktemp("tiny_job")
    out = run_recipe(
        "job.sh",
        "--no",
        "tiny",
        "--synthetic_size",
        "tiny",
        "--machines",
        " ".join(TINY_MACHINES),
        *recipe_dirs(folder),
    )
    before = folder_state(folder)
    yield folder, out
    # no test writes into the session's run (a test that adds outputs works on private_copy)
    changed = sorted(set(folder_state(folder).items()) ^ set(before.items()))
    assert not changed, f"a test wrote into the session's tiny job: {changed[:5]}"


def folder_state(folder: Path) -> dict:
    """Every file under ``folder`` -> (size, mtime): what a write would change."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="session")
def tiny_baseline(tiny_job, tmp_path_factory):
    """``baseline.sh`` stages 3-6 on the tiny job's dump (read only) into its own experiment folder:
    (the folder that holds this ``exp``, its output). Tests only read it."""
    job, _ = tiny_job
    folder = tmp_path_factory.mktemp("tiny_baseline")
    dirs = ["--data_root", str(job / "data"), "--dumpdir", str(job / "dump"), "--expdir", str(folder / "exp")]
    out = run_recipe("baseline.sh", "--stage", "3", "--machines", " ".join(TINY_MACHINES), *dirs)
    return folder, out


def private_copy(tiny_job, tmp_path) -> Path:
    """A test's own copy of the session's tiny job (data, dump, experiments), for a test that adds to
    its outputs: the session's folder is never written into, so no test depends on another's order."""
    folder, _ = tiny_job
    return Path(shutil.copytree(folder, tmp_path / "tiny_job", symlinks=True))
