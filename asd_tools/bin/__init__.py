"""Command-line entry points, run as ``python -m asd_tools.bin.<name>``."""
