"""Benchmark scenarios: one definition each, shared by the benchmarks, the demo and the tests."""
