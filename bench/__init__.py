"""Benchmarks and fault checks of the real stack (see bench/README.md)."""
