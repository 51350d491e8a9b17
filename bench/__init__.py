"""Benchmarks (not tests): each prints its figures and records them in BENCHMARKS.md."""
