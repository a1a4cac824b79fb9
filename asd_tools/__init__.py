"""asd_tools: reproducible recipes for anomalous sound detection (DCASE 2022 Task 2)."""

__version__ = "0.1.0"
