"""Every scenario of ``scenarios.py`` under pytest-benchmark, one group each.

Run: ``python -m pytest benchmarks --benchmark-only`` (``--benchmark-disable``
runs each once, as CI does). ``python -m benchmarks.report OUT`` runs the same
cases interleaved and writes the report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ._harness import CALLS
from .scenarios import SCENARIOS

CASES = [
    pytest.param(scenario, case, id=f"{scenario.group}[{case.name}]", marks=pytest.mark.benchmark(group=scenario.group))
    for scenario in SCENARIOS
    for case in scenario.cases
]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.mark.parametrize(("scenario", "case"), CASES)
def test_scenario(benchmark: Any, loop: asyncio.AbstractEventLoop, scenario: Any, case: Any) -> None:
    benchmark.extra_info.update(group=scenario.group, case=case.name, kind=case.kind, calls=CALLS)
    benchmark(case.factory(CALLS, loop))
