"""Benchmarks: not tests. Each writes JSON to bench/results/<name>.json."""
