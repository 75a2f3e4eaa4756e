"""hardy's benchmarks: pytest-benchmark files and the target checker."""
