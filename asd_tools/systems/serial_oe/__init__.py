"""System 1: serial outlier exposure (Kuroyanagi et al., DCASE 2022 Task 2, 2nd place)."""
