"""Facts every stage and every data set share; what differs per year lives in ``datasets/registry.py``."""

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 2.0  # the feature extractors' input length
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)

SPLITS = ("train", "test")
# 2025's extra clips (<half>/<machine>/supplemental/): clean machine sounds and noise-only recordings.
# Their manifest rows have split "supplemental" and state "normal" (clean) or NOISE (no machine sound).
SUPPLEMENTAL = "supplemental"
NOISE = "noise"
DOMAINS = ("source", "target")
STATES = ("normal", "anomaly")
UNKNOWN = "unknown"  # domain/state of unlabelled evaluation test clips

# The official evaluator clamps each AUC before the harmonic mean.
MIN_METRIC_VALUE = 2.2e-16
PAUC_MAX_FPR = 0.1
# Official baseline decision rule: gamma fitted to normal scores, this percentile.
DECISION_PERCENTILE = 0.9
