"""Official DCASE 2022 scoring, score tables and submission files."""
