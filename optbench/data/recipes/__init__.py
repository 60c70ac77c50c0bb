"""Sampling recipes of the built-in regimes (optbench.regimes points each entry at one of them)."""
