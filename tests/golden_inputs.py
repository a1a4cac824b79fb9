"""The fixed inputs and weights of the golden comparisons (tests/golden/, tools/golden/make_golden.py).

Both sides build them from seeds with this module, so that the golden files store only the original
code's outputs and a digest of what went in, not megabytes of weights: ``tools/golden/make_golden.py``
loads this file by path (it runs with the original code base's ``asd_tools`` on the path, so it must not
import this project's), and the tests import it as ``tests.golden_inputs``. It needs only numpy.
A test first checks the digest stored in the golden file, so a changed generator fails loudly instead
of comparing different inputs.
"""

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

# Buffers a module computes from its own settings (STFT window, mel filter bank, positional table):
# kept as each side builds them, never seeded, so the comparison also covers how they are computed.
COMPUTED_BUFFERS = ("spectrogram.window", "mel_scale.fb", "position_encode.pe")


def seeded_waves(seed: int, batch: int, samples: int) -> np.ndarray:
    """(batch, samples) float32: noise of a level that triples from row to row (0.03, 0.1, 0.3, ...), a
    1 kHz tone added to odd rows. Rows must differ in level and spectrum: a network's pooled output
    hardly tells two white noises of one level apart, so equal rows would let a changed front end pass."""
    rng = np.random.default_rng(seed)
    tone = 0.05 * np.sin(2 * np.pi * 1000 * np.arange(samples) / 16000)
    rows = [0.03 * 3**i * rng.standard_normal(samples) + (i % 2) * tone for i in range(batch)]
    return np.stack(rows).astype(np.float32)


def seeded_array(seed: int, shape, scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def is_seeded(name: str) -> bool:
    return not name.endswith(COMPUTED_BUFFERS)


def seeded_parameter(seed: int, name: str, shape) -> np.ndarray:
    """One state-dict entry from ``seed`` and its name (the name picks its own stream, so that the
    value does not depend on the order of the keys). Scales keep a random deep network's activations
    of order one in eval mode: weights N(0, 2/fan_in) (He), BatchNorm statistics near (0, 1): with
    N(0, 1/fan_in) a random EfficientNet's output no longer depends on its input, with 4/fan_in it
    explodes."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    shape = tuple(int(s) for s in shape)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    if leaf == "running_var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if leaf == "running_mean":
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if len(shape) >= 2:  # linear / convolution weights
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if leaf == "weight":  # normalisation scales and PReLU slopes
        return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)  # biases, GeM p, other vectors


def seeded_state_dict(seed: int, shapes: dict) -> dict:
    """Every seeded entry of a state dict given as {name: shape} (``is_seeded``)."""
    return {name: seeded_parameter(seed, name, shape) for name, shape in shapes.items() if is_seeded(name)}


def digest(*arrays) -> str:
    """sha256 of the arrays' bytes, dtypes and shapes (the golden file records it for its inputs)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_golden(name: str) -> dict:
    """A golden .npz as a dict, with its ``provenance`` JSON decoded."""
    path = GOLDEN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: golden file missing; regenerate it with tools/golden/make_golden.py")
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    out["provenance"] = json.loads(str(out["provenance"]))
    return out
