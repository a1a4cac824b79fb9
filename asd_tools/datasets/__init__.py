"""The data-set registry: every DCASE Task 2 year (and the synthetic layouts) as one spec each."""
