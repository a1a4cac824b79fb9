"""The official DCASE Task 2 autoencoder baseline (2020-2026) as a system of this recipe."""
