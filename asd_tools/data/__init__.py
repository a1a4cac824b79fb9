"""Data stages: names, synthetic data, download, dump, manifest, splits, windows."""
