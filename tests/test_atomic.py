"""Atomic writes: outputs appear whole or not at all, with the modes any other write would give them."""

import os

import pandas as pd
import pytest

from asd_tools.utils import atomic_path, atomic_write_text, write_csv


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring the previous one after it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], ids=["022", "002", "077"])
def test_written_files_get_0666_less_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "b.csv")
    with atomic_path(tmp_path / "sub" / "c.bin") as tmp:
        tmp.write_bytes(b"\0")
    for name in ("a.txt", "b.csv", "sub/c.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_failed_write_leaves_neither_output_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
