"""Expected failures of the entry points end in one clear line and exit code 1, never a traceback or a signal."""

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asd_tools.bin.common import best_device, os_error_line
from tests.conftest import make_layout

ROOT = Path(__file__).resolve().parents[1]


def cli(module, *args, preexec_fn=None, **env):
    """``python -m asd_tools.bin.<module> args`` with this checkout's asd_tools."""
    return subprocess.run(
        [sys.executable, "-m", f"asd_tools.bin.{module}", *args],
        capture_output=True,
        text=True,
        preexec_fn=preexec_fn,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", **env},
    )


def assert_one_line_error(result, *fragments):
    """Exit code 1, no traceback, and the error as the last line of stderr, holding every fragment."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "ERROR" in last and all(f in last for f in fragments), result.stderr


@pytest.mark.slow
def test_cuda_without_a_visible_gpu_is_one_line(tmp_path):
    result = cli(
        "train",
        *("--config", "conf.yaml", "--dumpdir", "dump", "--machine", "fan", "--machines", "fan valve"),
        *("--expdir", "exp", "--device", "cuda"),
        CUDA_VISIBLE_DEVICES="",
    )
    assert_one_line_error(result, "--device cuda: no CUDA GPU is visible", "--device auto", "--device cpu")


def test_device_names_are_checked(monkeypatch):
    assert best_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="--device gpu: not a device name; use auto, cpu, cuda or cuda:N"):
        best_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert best_device("auto") == "cpu"
    with pytest.raises(ValueError, match="--device cuda:0: no CUDA GPU is visible here"):
        best_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert best_device("cuda:1") == "cuda:1" and best_device("auto") == "cuda"
    with pytest.raises(ValueError, match=r"--device cuda:2: only 2 CUDA GPU\(s\) are visible \(cuda:0 to cuda:1\)"):
        best_device("cuda:2")


@pytest.mark.parametrize(
    "err, line",
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "dump/fan"),
            "dump/fan: Permission denied; check the permissions of the path and its folders, "
            "or choose another --dumpdir / --expdir",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "dump/fan/train.npy"),
            "dump/fan/train.npy: No space left on device; free some disk space, or point --dumpdir / --expdir "
            "at another disk",
        ),
        (
            OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b"),
            "a -> b: Invalid cross-device link",
        ),
    ],
)
def test_os_errors_name_the_path_the_reason_and_the_fix(err, line):
    assert os_error_line(err) == line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_dump_folder_is_one_line(tmp_path):
    root = make_layout(tmp_path / "data")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = cli("dump", "--data_root", str(root), "--dumpdir", str(locked / "dump"), "--machines", "fan")
    assert_one_line_error(result, str(locked / "dump"), "Permission denied", "choose another --dumpdir")


def _file_size_limit():
    """In the child: files may not grow past 64 KiB; a write past it fails with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path):
    root = make_layout(tmp_path / "data")  # 1.5 MB of training samples, far past the limit
    dumpdir = tmp_path / "dump"
    result = cli(
        "dump", "--data_root", str(root), "--dumpdir", str(dumpdir), "--machines", "fan", preexec_fn=_file_size_limit
    )
    assert_one_line_error(result, str(dumpdir / "fan" / "train.npy"), "File too large", "--dumpdir")
    assert [p for p in dumpdir.rglob("*") if p.is_file()] == []


def test_a_mistyped_tag_stops_the_scorer_before_the_recipe_makes_a_results_folder(tiny_dump, tmp_path):
    """Issue 36, fault 9: asd.sh asks ``score --where`` for the results folder (where score.log goes)
    first; a tag with no experiment must fail there, so that no folder is made for it."""
    (tmp_path / "fan" / "asd_model.tiny").mkdir(parents=True)
    result = cli(
        "score",
        *("--dumpdir", str(tiny_dump), "--expdir", str(tmp_path), "--machines", "fan valve"),
        *("--tag", "asd_model.tinny", "--where"),
    )
    assert_one_line_error(result, "no experiment 'asd_model.tinny' for fan", "experiments there: asd_model.tiny")
    assert result.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["fan"]


def test_a_command_line_mistake_is_one_line_without_the_usage_text():
    result = cli("make_lists", "--dumpdir", "d", "--machines", "Fan", "--valid_ratio", "0.15", "--seed", "0")
    assert result.returncode == 2 and "usage" not in result.stderr.lower()
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()] and "'Fan' (did you mean 'fan'?)" in result.stderr
    )


HOLD_LOCK = (
    "import sys, time\n"
    "from asd_tools.utils import folder_lock\n"
    "with folder_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
    "print('released', flush=True)\n"
)


def _holder(folder, seconds):
    """Another run holding ``folder``'s lock for ``seconds`` (returned once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_in_a_locked_folder_names_the_first_or_waits_and_a_killed_ones_lock_is_taken_over(
    tmp_path, caplog
):
    """Issue 36, fault 7: two identical runs never both work in one experiment (or dump) folder."""
    from asd_tools.utils import LOCK_NAME, FolderLocked, folder_lock

    first = _holder(tmp_path, 60)
    result = cli("detect", "--dumpdir", "dump", "--machine", "fan", "--expdir", str(tmp_path))
    running = f"another run (pid {first.pid}, since "
    assert_one_line_error(result, running, f"is working in {tmp_path}", "--wait_lock true")
    first.kill()  # kill -9: the kernel releases the lock; the file it wrote stays
    first.wait()
    with caplog.at_level("WARNING"), folder_lock(tmp_path):
        assert f"pid {os.getpid()}," in (tmp_path / LOCK_NAME).read_text()
    assert f"took over the lock of a run that ended without releasing it (pid {first.pid}, since " in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()  # released and removed
    second = _holder(tmp_path, 3)
    with pytest.raises(FolderLocked):
        with folder_lock(tmp_path):
            pass
    with folder_lock(tmp_path, wait=True):  # waits for the holder to release it
        assert second.stdout.readline().strip() == "released"
    second.wait()
