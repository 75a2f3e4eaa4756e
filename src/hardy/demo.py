"""A flaky dependency called through a circuit breaker: ``python -m hardy demo``.

The simulated dependency has outages (every call fails) and healthy spells;
calls go through a breaker with a fallback. Each state change is printed as
it happens, and a summary table at the end.

Example::

    python -m hardy demo --seconds 3
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _core
from .state import CircuitState

__all__ = ["FlakyDependency", "run_demo"]


@dataclass
class FlakyDependency:
    """A fake remote service: healthy, then down for a while, then healthy again."""

    outage_every: float = 1.0
    outage_length: float = 0.4
    failure_rate: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    started: float = field(default_factory=time.monotonic)

    def is_down(self) -> bool:
        return (time.monotonic() - self.started) % self.outage_every < self.outage_length

    def __call__(self, request: int) -> str:
        if self.is_down() or self.rng.random() < self.failure_rate:
            raise ConnectionError(f"dependency unavailable for request {request}")
        return f"response {request}"


def run_demo(seconds: float = 3.0, *, out: Callable[[str], Any] = print) -> dict[str, Any]:
    """Call a flaky dependency through a breaker for ``seconds``; print and return a summary."""
    started = time.monotonic()
    breaker = _core.CircuitBreaker("demo-dependency", failure_threshold=3, reset_timeout=0.2, half_open_max_calls=2)

    def on_change(b: Any, old: CircuitState, new: CircuitState) -> None:
        out(f"{time.monotonic() - started:7.3f}s  breaker {b.name!r}: {old.value} -> {new.value}")

    breaker.add_listener(on_change)
    dependency = FlakyDependency()
    fallbacks = 0

    def cached(request: int) -> str:
        nonlocal fallbacks
        fallbacks += 1
        return f"cached response {request}"

    protected = _core.protect(breaker, dependency, cached)
    latencies: list[float] = []
    errors = 0
    calls = 0
    out(f"hardy demo: {seconds:g}s of calls to a flaky dependency (core: {_core.IMPLEMENTATION})")
    while time.monotonic() - started < seconds:
        calls += 1
        begin = time.perf_counter()
        try:
            protected(calls)
        except ConnectionError:
            errors += 1
        latencies.append((time.perf_counter() - begin) * 1e6)
        time.sleep(0.001)
    stats = breaker.get_stats()
    quantiles = statistics.quantiles(latencies, n=100)
    summary = {
        "calls": calls,
        "successes": stats["successes"],
        "failures": errors,
        "fallbacks": fallbacks,
        "rejections": stats["rejections"],
        "times opened": stats["opened"],
        "p50 latency (us)": round(quantiles[49], 1),
        "p99 latency (us)": round(quantiles[98], 1),
    }
    out("")
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        out(f"  {key:<{width}}  {value:>10}")
    return summary
