"""Argument helpers shared by the entry points."""

import argparse
import logging
import sys

from asd_tools.constants import MACHINE_TYPES
from asd_tools.utils import setup_logging


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--verbose", type=int, default=1, help="0: warnings, 1: info, 2: debug")
    p.add_argument("--log", default=None, help="also write the log to this file")
    return p


def machines_arg(value: str):
    """Space- or comma-separated machine types, checked against the known ones."""
    machines = value.replace(",", " ").split()
    if not machines:
        raise argparse.ArgumentTypeError(f"no machine types given; known: {' '.join(MACHINE_TYPES)}")
    unknown = [m for m in machines if m not in MACHINE_TYPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown machine types {unknown}; known: {' '.join(MACHINE_TYPES)}")
    return machines


def best_device(requested="auto"):
    """``auto``: CUDA when present, else CPU; anything else is passed on as given."""
    if requested == "auto":
        import torch  # only the entry points that run models pay for this import

        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def run(main_fn, args):
    """Set up logging, run, and turn expected errors into one clear line and exit code 1."""
    setup_logging(args.log, args.verbose)
    try:
        main_fn(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, ConnectionError) as err:
        logging.error(str(err).strip("'\""))
        sys.exit(1)
