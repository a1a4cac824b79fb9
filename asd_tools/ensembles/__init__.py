"""Ensembles over scored experiments: averages (domain generalisation / specialisation) and domain weights."""
