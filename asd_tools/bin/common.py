"""Argument helpers shared by the entry points."""

import argparse
import errno
import logging
import os
import sys

from asd_tools.data.dump_arrays import VERIFY_ENV
from asd_tools.datasets.registry import DATASET_SPECS, DEFAULT, all_machine_types
from asd_tools.datasets.spec import unknown_machines_line
from asd_tools.utils import setup_logging


class OneLineParser(argparse.ArgumentParser):
    """A command line mistake is one line (the usage text is for --help): under the recipe a stage's
    output goes to its log, whose last lines the console shows, and a usage dump would bury the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (--help lists the options)\n")


def parser(description: str) -> argparse.ArgumentParser:
    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--verbose", type=int, default=1, help="0: warnings, 1: info, 2: debug")
    p.add_argument("--log", default=None, help="also write the log to this file")
    return p


def experiment_args(p: argparse.ArgumentParser, checkpoints=False) -> None:
    """The options of a per-machine stage (train, embed, detect): the dump, the machine type and its
    experiment folder (and, for the stages after training, which checkpoints)."""
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True, help="exp/<data>/<machine>/<tag> (gets or holds config.yaml)")
    if checkpoints:
        p.add_argument("--checkpoints", nargs="*", default=None, help="checkpoint names (default: every one)")
    verify_arg(p)


def verify_arg(p: argparse.ArgumentParser) -> None:
    """``--verify true``: check the content digest of every dump array the stage opens, not only its size."""
    p.add_argument(
        "--verify",
        type=bool_arg,
        default=False,
        help="true: re-hash the dump's arrays against their record (by default only when a size or time changed)",
    )


def lock_arg(p: argparse.ArgumentParser) -> None:
    """``--wait_lock``: what a stage does when another run works in its folder (utils.folder_lock)."""
    p.add_argument(
        "--wait_lock",
        type=bool_arg,
        default=False,
        help="true: wait for another run working in the same folder; false: stop, naming it",
    )


def bool_arg(value: str) -> bool:
    """``true`` / ``false`` as the shell scripts write them."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, not '{value}'")


def machines_arg(value: str):
    """Space- or comma-separated machine types, checked against those of every registered year
    (the stages that know the data set check them against its own)."""
    machines = value.replace(",", " ").split()
    known = all_machine_types()
    if not machines:
        raise argparse.ArgumentTypeError(f"no machine types given; known: {' '.join(known)}")
    unknown = [m for m in machines if m not in known]
    if unknown:
        raise argparse.ArgumentTypeError(unknown_machines_line(unknown, known))
    return machines


def seeds_arg(value: str):
    """Space- or comma-separated training seeds, e.g. "0 1 2": non-negative integers, each once."""
    words = value.replace(",", " ").split()
    if not words or not all(w.isdigit() for w in words):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative integers, e.g. \"0 1 2\", not '{value}'")
    seeds = [int(w) for w in words]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is given twice in '{value}'")
    return seeds


def layout_arg(p: argparse.ArgumentParser) -> None:
    """``--layout``: which registered data set's names, units and metric the files follow."""
    p.add_argument("--layout", default=DEFAULT, choices=list(DATASET_SPECS), help="the data set's layout (year)")


def best_device(requested="auto"):
    """``auto``: CUDA when present, else CPU; anything else is passed on as given, once a ``cuda`` device
    is known to exist (torch would fail later, with a traceback from deep inside the first stage)."""
    import torch  # only the entry points that run models pay for this import

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"--device {requested}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"--device {requested}: no CUDA GPU is visible here; use --device auto (the GPU when there is "
                "one, else the CPU) or --device cpu"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"--device {requested}: only {count} CUDA GPU(s) are visible (cuda:0 to cuda:{count - 1}); "
                "use one of them, --device auto or --device cpu"
            )
    return requested


# What to do when reading or writing a file fails, by errno.
_NOT_ALLOWED = "check the permissions of the path and its folders, or choose another --dumpdir / --expdir"
OS_ERROR_ADVICE = {
    errno.EACCES: _NOT_ALLOWED,
    errno.EPERM: _NOT_ALLOWED,
    errno.EROFS: "choose another --dumpdir / --expdir",
    errno.ENOSPC: "free some disk space, or point --dumpdir / --expdir at another disk",
    errno.EDQUOT: "free some space within the quota, or point --dumpdir / --expdir at another disk",
    errno.EFBIG: "raise the file-size limit (ulimit -f), or point --dumpdir / --expdir at another file system",
}


def os_error_line(err: OSError) -> str:
    """One line for a failed read or write: the path, the system's reason and what to do."""
    where = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    text = f"{where}: {err.strerror}" if err.filename is not None and err.strerror else str(err)
    advice = OS_ERROR_ADVICE.get(err.errno)
    return f"{text}; {advice}" if advice else text


def run(main_fn, args):
    """Set up logging, run, and turn expected errors into one clear line and exit code 1."""
    setup_logging(args.log, args.verbose)
    if getattr(args, "verify", False):  # an environment variable, so that worker processes inherit it
        os.environ[VERIFY_ENV] = "true"
    try:
        main_fn(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, ConnectionError) as err:
        logging.error(str(err).strip("'\""))
        sys.exit(1)
    except OSError as err:  # permissions, a full disk, ...: the traceback only with --verbose 2
        logging.debug("traceback", exc_info=True)
        logging.error(os_error_line(err))
        sys.exit(1)
