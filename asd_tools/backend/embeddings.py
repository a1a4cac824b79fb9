"""Window-level features of a set of clips: the hand-over between extractors and detectors.

Every system (baseline, serial outlier exposure, DG-Mix) writes its extractor's outputs in
this one format, so that the detector stage and the scoring are shared.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asd_tools.utils import atomic_path


@dataclass
class Embeddings:
    """``features[name]`` has one row per window; ``window_clip`` maps windows to ``clip_id``."""

    clip_id: np.ndarray
    window_clip: np.ndarray
    features: dict

    def __post_init__(self):
        n = len(self.window_clip)
        for name, array in self.features.items():
            if len(array) != n:
                raise ValueError(f"feature '{name}' has {len(array)} rows for {n} windows")

    def stack(self, names) -> np.ndarray:
        """Concatenate named features column-wise (float64)."""
        missing = [n for n in names if n not in self.features]
        if missing:
            raise KeyError(f"features {missing} are not in these embeddings; available: {sorted(self.features)}")
        return np.concatenate([self.features[n].reshape(len(self.window_clip), -1) for n in names], axis=1).astype(
            np.float64
        )

    def save(self, path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    clip_id=self.clip_id.astype(str),
                    window_clip=self.window_clip,
                    **{f"feature_{k}": v for k, v in self.features.items()},
                )

    @classmethod
    def load(cls, path) -> "Embeddings":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run the embedding stage first")
        with np.load(path) as data:
            features = {k[len("feature_") :]: data[k] for k in data.files if k.startswith("feature_")}
            return cls(data["clip_id"], data["window_clip"], features)
