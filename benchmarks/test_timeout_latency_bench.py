"""Smoke test of the timeout-lateness measurement the report makes (``benchmarks/timeout_latency.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from . import timeout_latency


@pytest.mark.parametrize("core", ["c", "py"])
@pytest.mark.parametrize("busy_threads", [0, 2])
def test_lateness(benchmark: Any, core: str, busy_threads: int) -> None:
    late = benchmark.pedantic(
        timeout_latency.lateness, args=(core, busy_threads, 3), rounds=1, iterations=1, warmup_rounds=0
    )
    assert len(late) == 3


@pytest.mark.parametrize("core", ["c", "py"])
def test_verdict_cost(benchmark: Any, core: str) -> None:
    cost = benchmark.pedantic(timeout_latency.verdict_cost, args=(core, 10), rounds=1, iterations=1)
    assert cost > 0
