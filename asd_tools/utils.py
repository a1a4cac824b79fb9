"""Small shared helpers: atomic writes, logging set-up, harmonic mean."""

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path

import numpy as np


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
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


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


def setup_logging(log_file=None, verbosity: int = 1) -> None:
    """Log to stderr (and to ``log_file`` when given) with time and place."""
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity == 1 else logging.WARNING
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=level,
        handlers=handlers,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
        force=True,
    )
