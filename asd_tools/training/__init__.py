"""The trainer core shared by both systems, and the optimiser / scheduler registries."""
