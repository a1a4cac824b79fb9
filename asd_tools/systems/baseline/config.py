"""Config schema of the simple baseline (log-mel statistics + shared detectors)."""

from dataclasses import dataclass, field
from typing import ClassVar, List

from asd_tools.backend.detect import DetectConfig, check_inlier_sets
from asd_tools.config import choice
from asd_tools.data.split import SUBSETS
from asd_tools.systems.base import check_system_field
from asd_tools.systems.baseline.features import LogMelConfig


@dataclass
class BaselineConfig:
    REQUIRED_SECTIONS: ClassVar[tuple] = ("logmel", "detect")  # its features and its detectors
    system: str = "baseline"  # the systems registry's name (asd_tools.systems.registry)
    logmel: LogMelConfig = field(default_factory=LogMelConfig)
    # training-clip lists whose clips are the detectors' inliers (no network is trained)
    inlier_subsets: List[str] = field(default_factory=lambda: ["train", "valid"])
    detect: DetectConfig = field(default_factory=DetectConfig)

    def __post_init__(self):
        check_system_field(self, "baseline")
        for subset in self.inlier_subsets:
            choice(subset, SUBSETS[:2], "inlier_subsets")
        check_inlier_sets(self.detect, self.inlier_subsets, "inlier_subsets")
