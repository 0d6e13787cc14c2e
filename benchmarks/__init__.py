"""Benchmarks of tap-ghl-contacts against the sandbox."""
