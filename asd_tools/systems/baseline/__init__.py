"""The simple baseline: log-mel statistics of the whole clip, scored by the shared detectors."""
