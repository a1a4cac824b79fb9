"""Facts of DCASE 2022 Task 2 that every stage shares (see README: data layout)."""

MACHINE_TYPES = ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")
DEV_SECTIONS = (0, 1, 2)
EVAL_SECTIONS = (3, 4, 5)
SECTIONS = DEV_SECTIONS + EVAL_SECTIONS
N_SECTIONS = len(SECTIONS)

SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0
WINDOW_SECONDS = 2.0  # the feature extractors' input length
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)

DATASETS = ("dev", "eval")  # dev = sections 00-02, eval = sections 03-05
SPLITS = ("train", "test")
DOMAINS = ("source", "target")
STATES = ("normal", "anomaly")
UNKNOWN = "unknown"  # domain/state of unlabelled evaluation test clips

# The official evaluator clamps each AUC before the harmonic mean.
MIN_METRIC_VALUE = 2.2e-16
PAUC_MAX_FPR = 0.1
# Official baseline decision rule: gamma fitted to normal scores, this percentile.
DECISION_PERCENTILE = 0.9


def dataset_of_section(section: int) -> str:
    """Development sections are 00-02, evaluation sections 03-05."""
    if section in DEV_SECTIONS:
        return "dev"
    if section in EVAL_SECTIONS:
        return "eval"
    raise ValueError(f"section {section:02d} is not a DCASE 2022 section (00-05)")
