"""Benchmarks: speed and memory against peers measured in the same run (see README.md here)."""
