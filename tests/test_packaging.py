"""A regular (non-editable) install of the checkout holds every entry point and what it imports.

The development environment installs asd_tools editable, which finds every folder of the checkout
whether or not setup.py packages it; this test installs a built wheel into a fresh environment instead.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
# What a wheel is built from; copied, because an in-tree build leaves build/ and *.egg-info in the checkout.
PACKAGING_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")


def entry_points():
    """Every module of asd_tools/bin that runs as ``python -m`` (discovered, not listed)."""
    names = [p.stem for p in sorted((ROOT / "asd_tools" / "bin").glob("*.py")) if "__main__" in p.read_text()]
    assert len(names) >= 10, names  # a broken discovery must not pass by checking nothing
    return names


def build_wheel(workdir: Path) -> Path:
    source = workdir / "source"
    shutil.copytree(ROOT / "asd_tools", source / "asd_tools", ignore=shutil.ignore_patterns("__pycache__"))
    for name in PACKAGING_FILES:
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", workdir, source], check=True)
    (wheel,) = workdir.glob("asd_tools-*.whl")
    return wheel


def fresh_environment(workdir: Path, wheel: Path) -> Path:
    """A new virtual environment with only the wheel installed; its dependencies come from this one."""
    env_dir = workdir / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", "--python", python]
    # without PYTHONPATH: a checkout on it (scripts/path.sh puts it there) holds the egg-info that building the
    # wheel writes, and pip would take that for an installed asd_tools
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([*pip, "install", "--no-deps", wheel], check=True, env=clean)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    # A path in a .pth file joins sys.path after the fresh site-packages, and the .pth files inside it
    # (among them the editable install's finder of asd_tools) are not run, so only the wheel's copy is seen.
    Path(site, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def test_installed_wheel_runs_every_entry_point(tmp_path):
    wheel = build_wheel(tmp_path)
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "asd_tools").rglob("*.py")}
    assert sorted(sources - set(zipfile.ZipFile(wheel).namelist())) == []  # e.g. a folder without __init__.py
    python = fresh_environment(tmp_path, wheel)
    outside = tmp_path / "elsewhere"  # not the checkout, whose asd_tools/ would shadow the installed one
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args):
        return subprocess.run([python, *args], cwd=outside, env=env, capture_output=True, text=True)

    where = run("-c", "import asd_tools; print(asd_tools.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(python.parents[1]), where.stdout

    names = entry_points()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # each start-up imports torch: run them side by side
        results = dict(zip(names, pool.map(lambda name: run("-m", f"asd_tools.bin.{name}", "--help"), names)))
    failed = {name: r.stderr.strip().splitlines()[-1:] for name, r in results.items() if r.returncode != 0}
    assert failed == {}, failed
    assert all(r.stdout.startswith("usage:") for r in results.values())
