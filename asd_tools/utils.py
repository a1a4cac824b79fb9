"""Small shared helpers: atomic writes, logging set-up, console and progress bars, harmonic mean."""

import contextlib
import fcntl
import functools
import logging
import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A killed process leaves at most a ``.tmp`` file that no stage reads, never a
    half-written output that a re-run would trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None:  # a failed write (e.g. a full disk) names no file: name the output
            err.filename = str(path)
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _new_temporary(path: Path) -> Path:
    """Create an empty, new ``.<name>.<random>.tmp`` beside ``path``.

    Created like ``open()`` creates files (mode 0666 less the umask), not with mkstemp's fixed
    0600, which would make every output private to whoever wrote it. O_EXCL never reuses a name.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(TEMPORARY_TOKEN_BYTES)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


TEMPORARY_TOKEN_BYTES = 4  # the random part of a temporary's name: 8 hex digits


def remove_stale_temporaries(paths) -> tuple:
    """Remove the temporary files that a killed ``atomic_path`` left beside each of ``paths``; return
    (files removed, bytes freed).

    Only names ``atomic_path`` makes for exactly these outputs (``.<name>.<8 hex digits>.tmp``) are
    touched, never another file. Call it only where no other run can be writing the same outputs.
    """
    count = freed = 0
    for path in map(Path, paths):
        pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{{2 * TEMPORARY_TOKEN_BYTES}}}\.tmp")
        if not path.parent.is_dir():
            continue
        for stale in path.parent.iterdir():
            if pattern.fullmatch(stale.name) and stale.is_file() and not stale.is_symlink():
                freed += stale.stat().st_size
                stale.unlink()
                count += 1
    return count, freed


def atomic_write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_csv(df, path, **kwargs) -> None:
    """Write a pandas DataFrame to CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)


def harmonic_mean(values, floor: float = 0.0) -> float:
    """Harmonic mean; values below ``floor`` are raised to it (as the evaluator does)."""
    values = np.maximum(np.asarray(values, dtype=np.float64), floor)
    if values.size == 0:
        return float("nan")
    if np.any(values <= 0):
        return 0.0
    return float(values.size / np.sum(1.0 / values))


CONSOLE_FD = "ASD_CONSOLE_FD"  # set by scripts/utils/run_local.sh: the terminal's file descriptor
CONSOLE_ID = "ASD_CONSOLE_ID"  # and its device:inode, which tells it from a reused descriptor


def console_stream():
    """The user's terminal, where progress bars and a copy of the warnings go.

    Under ``utils/run_local.sh`` stderr is the stage's log file and the terminal is the
    descriptor named by ``$ASD_CONSOLE_FD``; anywhere else it is ``sys.stderr``.
    """
    return _open_console() or sys.stderr


@functools.lru_cache(maxsize=1)
def _open_console():
    try:
        fd = int(os.environ[CONSOLE_FD])
        st = os.fstat(fd)
        if f"{st.st_dev}:{st.st_ino}" != os.environ.get(CONSOLE_ID):
            return None  # closed for this process and reused by another file: not the terminal
        return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    except (KeyError, ValueError, OSError):
        return None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def progress(iterable=None, **kwargs):
    """A tqdm progress bar on the console, shown only when the console is a terminal: never in a
    log file or a CI log. Keyword arguments go to tqdm."""
    stream = console_stream()
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    disable = kwargs.pop("disable", False) or not _isatty(stream)
    return tqdm(iterable, file=stream, disable=disable, **kwargs)


def announce(text: str) -> None:
    """Print a result line to stdout (the log, under ``utils/run_local.sh``) and to the console."""
    print(text, flush=True)
    console = console_stream()
    if not _same_file(console, sys.stdout):
        print(text, file=console, flush=True)


class _BarSafeHandler(logging.StreamHandler):
    """Writes each record above any progress bar on its stream instead of through it."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:
            self.handleError(record)


def _same_file(a, b) -> bool:
    try:
        x, y = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, ValueError, OSError):
        return a is b
    return (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)


def setup_logging(log_file=None, verbosity: int = 1) -> None:
    """Log to stderr (and append to ``log_file`` when given) with time and place.

    When stderr is not the console (under ``utils/run_local.sh`` it is the stage's log file),
    warnings and errors are copied to the console too, so that the user sees them at once.
    """
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity == 1 else logging.WARNING
    handlers = [_BarSafeHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a"))
    console = console_stream()
    if not _same_file(console, sys.stderr):
        handlers.append(_BarSafeHandler(console))
        handlers[-1].setLevel(logging.WARNING)
    logging.basicConfig(
        level=level,
        handlers=handlers,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
        force=True,
    )


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    Used where a folder's files must all come from one run (a submission): a killed run
    leaves the previous folder untouched, never a mix of old and new files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary_dir(path, "tmp")
    try:
        yield tmp
        if path.exists():
            old = _new_temporary_dir(path, "old")
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _new_temporary_dir(path: Path, suffix: str) -> Path:
    """A new ``.<name>.<random>.<suffix>`` folder beside ``path``, made like mkdir makes folders (umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.{suffix}")
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue


LOCK_NAME = ".asd_lock"  # in a locked folder while a run works in it


class FolderLocked(ValueError):
    """Another live run holds the lock of a folder."""


@contextlib.contextmanager
def folder_lock(folder, wait=False, option="--wait_lock true"):
    """Hold ``folder``'s lock while a stage works in it, so that two identical runs never both work there.

    An ``fcntl.flock`` on ``<folder>/.asd_lock``, which holds the holder's pid and start time: the
    kernel releases it when the process ends, ``kill -9`` included. A second run stops naming the
    first (``FolderLocked``), or with ``wait`` waits for it. A lock file left by a run that ended
    without removing it (killed) is taken over with a note. The file is removed on release; a run
    that locked a file just removed checks the path's identity and takes the lock afresh.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, path, folder, wait, option)
        except BaseException:
            os.close(fd)
            raise
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break  # else the holder removed the file as it released it: lock the new one
        os.close(fd)
    try:
        left = os.read(fd, 200).decode(errors="replace").strip()
        if left:
            logging.warning(f"{folder}: took over the lock of a run that ended without releasing it ({left})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        os.close(fd)


def _acquire(fd, path, folder, wait, option):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = Path(path).read_text(errors="replace").strip() or "pid unknown"
    if not wait:
        raise FolderLocked(
            f"another run ({holder}) is working in {folder}; wait for it to end, or re-run with {option} to wait"
        )
    logging.warning(f"another run ({holder}) is working in {folder}; waiting for it ({option})")
    fcntl.flock(fd, fcntl.LOCK_EX)
