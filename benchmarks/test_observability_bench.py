"""Observability under pytest-benchmark: what the exporters add to a success, and a scrape of 10,000 breakers.

The figures come from ``observability.py`` (each round times the same
wrapper with every exporter on and off, in random order); they are stored in
``extra_info`` for ``targets.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import observability


@pytest.mark.benchmark(group="observed-success")
@pytest.mark.parametrize("case", ["breaker-closed-success", "retry-first-attempt-success"])
def test_observed_success(benchmark: Any, case: str) -> None:
    figures = benchmark.pedantic(lambda: observability.overhead(rounds=11)[case], rounds=1, iterations=1)
    benchmark.extra_info.update(case=case, **figures)


@pytest.mark.benchmark(group="prometheus-scrape-10000")
def test_scrape(benchmark: Any) -> None:
    figures = benchmark.pedantic(observability.scrape, rounds=1, iterations=1)
    benchmark.extra_info.update(case="c", **figures)
