"""The main job on a simulated flaky dependency: ``python -m hardy demo``.

The dependency has outages (every call fails), latency spikes (a call takes
far longer than usual) and the odd random error. Each call goes through
fallback (outermost), timeout, retry and a circuit breaker (innermost), the
stacking the README recommends. State changes are printed as they happen and
a summary table at the end.

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
from .breaker import circuit_breaker, registry
from .fallback import fallback
from .retry import retry
from .state import CircuitState
from .timeout import timeout

__all__ = ["FlakyDependency", "run_demo"]


@dataclass
class FlakyDependency:
    """A fake remote service: outages, latency spikes and occasional errors."""

    outage_every: float = 1.0
    outage_length: float = 0.4
    spike_rate: float = 0.03
    spike_seconds: float = 0.05
    failure_rate: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    started: float = field(default_factory=time.monotonic)

    def __call__(self, request: int) -> str:
        if (time.monotonic() - self.started) % self.outage_every < self.outage_length:
            raise ConnectionError(f"dependency down (request {request})")
        if self.rng.random() < self.spike_rate:
            # Slow Python work, in slices the timeout can interrupt (a single
            # long C call, like one time.sleep, is interrupted only when it returns).
            end = time.monotonic() + self.spike_seconds
            while time.monotonic() < end:
                time.sleep(0.001)
        if self.rng.random() < self.failure_rate:
            raise ConnectionError(f"dependency error (request {request})")
        return f"response {request}"


def run_demo(seconds: float = 3.0, *, out: Callable[[str], Any] = print) -> dict[str, Any]:
    """Call a flaky dependency through fallback, timeout, retry and a breaker for ``seconds``."""
    started = time.monotonic()
    name = "demo-dependency"
    registry.remove(name)
    counts = {"retries": 0, "fallbacks": 0, "timeouts": 0}

    def on_retry(exc: BaseException | None, attempt: int) -> None:
        counts["retries"] += 1

    def cached(request: int) -> str:
        counts["fallbacks"] += 1
        return f"cached response {request}"

    dependency = FlakyDependency()

    @fallback(cached, log_failures=False)
    @timeout(0.02)
    @retry(
        max_attempts=2, initial_delay=0.001, max_delay=0.002, retryable_exceptions=ConnectionError, on_retry=on_retry
    )
    @circuit_breaker(name, failure_threshold=3, reset_timeout=0.2, half_open_max_calls=2)
    def call(request: int) -> str:
        return dependency(request)

    breaker = registry.get(name)
    assert breaker is not None

    def on_change(b: Any, old: CircuitState, new: CircuitState) -> None:
        out(f"{time.monotonic() - started:7.3f}s  breaker {b.name!r}: {old.value} -> {new.value}")

    breaker.add_listener(on_change)
    out(f"hardy demo: {seconds:g}s of calls to a flaky dependency (core: {_core.IMPLEMENTATION})")
    out("each call: fallback > timeout 20 ms > retry (2 attempts) > circuit breaker")
    latencies: list[float] = []
    calls = 0
    while time.monotonic() - started < seconds:
        calls += 1
        begin = time.perf_counter()
        call(calls)
        latencies.append((time.perf_counter() - begin) * 1e6)
        time.sleep(0.001)
    stats = breaker.get_stats()
    quantiles = statistics.quantiles(latencies, n=100)
    summary = {
        "calls": calls,
        "successes": calls - counts["fallbacks"],
        "fallbacks": counts["fallbacks"],
        "rejections": stats["rejections"],
        "retries": counts["retries"],
        "times opened": stats["opened"],
        "p50 latency (us)": round(quantiles[49], 1),
        "p99 latency (us)": round(quantiles[98], 1),
    }
    out("")
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        out(f"  {key:<{width}}  {value:>10}")
    registry.remove(name)
    return summary
