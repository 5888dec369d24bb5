"""Sweeps (Guild's batches): many runs of one operation over a flag space."""
