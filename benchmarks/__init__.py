"""Benchmarks of fishcore: measured, printed, never asserted (outside the library package)."""
