"""The main job on a simulated flaky dependency: ``python -m hardy demo``.

The dependency has outages (every call fails), latency spikes (a call takes
far longer than usual) and the odd random error. Each call goes through
fallback (outermost), timeout, retry and a circuit breaker (innermost), the
stacking the README recommends. The outages' beginnings and ends and the
breaker's state changes are printed as they happen, then a summary: calls,
successes, fallbacks, timeouts fired, rejections, retries, outages and
latencies.

Example::

    python -m hardy demo --seconds 3
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
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
    """A fake remote service: outages, latency spikes and occasional errors.

    Outage ``k`` runs from ``k * outage_every`` to ``k * outage_every +
    outage_length`` seconds after ``started``; outside them a call is slow
    with probability ``spike_rate`` and fails with ``failure_rate``.

    Example::

        dependency = FlakyDependency(outage_every=1.0, outage_length=0.4)
        dependency.outage_at(0.1)   # True: the first outage starts at once
    """

    outage_every: float = 1.0
    outage_length: float = 0.4
    spike_rate: float = 0.03
    spike_seconds: float = 0.05
    failure_rate: float = 0.05
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    started: float = field(default_factory=time.monotonic)

    def outage_at(self, elapsed: float) -> bool:
        """Whether the dependency is down ``elapsed`` seconds after ``started``."""
        return elapsed % self.outage_every < self.outage_length

    def outage_edges(self) -> Iterator[tuple[float, str]]:
        """Every outage's beginning and end, in order, as ``(seconds after started, "begins" | "ends")``."""
        if self.outage_length <= 0:
            return
        for k in itertools.count():
            yield k * self.outage_every, "begins"
            yield k * self.outage_every + self.outage_length, "ends"

    def __call__(self, request: int) -> str:
        if self.outage_at(time.monotonic() - self.started):
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


def _percentile(values: list[float], percent: int) -> float:
    """Nearest-rank percentile; defined for a single value too (``statistics.quantiles`` needs two)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def run_demo(
    seconds: float = 3.0,
    *,
    out: Callable[[str], Any] = print,
    dependency: FlakyDependency | None = None,
) -> dict[str, Any]:
    """Call a flaky dependency through fallback, timeout, retry and a breaker for ``seconds``.

    Prints each outage's beginning and end and each breaker state change as
    they happen, then a summary, which it also returns. At least one call is
    made however short ``seconds`` is.

    Example::

        summary = run_demo(0.5, out=lambda line: None)
        summary["calls"] >= 1   # True
    """
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
        raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
    name = "demo-dependency"
    registry.remove(name)
    counts = {"retries": 0, "fallbacks": 0, "timeouts": 0}

    def on_retry(exc: BaseException | None, attempt: int) -> None:
        counts["retries"] += 1

    def cached(request: int) -> str:
        counts["fallbacks"] += 1
        return f"cached response {request}"

    def timed_out(request: int) -> str:
        counts["timeouts"] += 1
        return cached(request)

    dependency = dependency if dependency is not None else FlakyDependency()
    started = dependency.started

    @fallback(cached, log_failures=False)
    @timeout(0.02, fallback=timed_out)
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

    edges = dependency.outage_edges()
    no_more = (math.inf, "")
    next_edge = next(edges, no_more)
    outages: list[list[float]] = []

    def report_outages(elapsed: float) -> None:
        # Edges are printed at their scheduled time, before the calls they affect.
        nonlocal next_edge
        while next_edge[0] <= elapsed:
            at, what = next_edge
            out(f"{at:7.3f}s  dependency: outage {what}")
            if what == "begins":
                outages.append([at, math.inf])
            else:
                outages[-1][1] = at
            next_edge = next(edges, no_more)

    breaker.add_listener(on_change)
    out(f"hardy demo: {seconds:g}s of calls to a flaky dependency (core: {_core.IMPLEMENTATION})")
    out("each call: fallback > timeout 20 ms (its fallback: the cache) > retry (2 attempts) > circuit breaker")
    latencies: list[float] = []
    calls = 0
    while calls == 0 or time.monotonic() - started < seconds:
        report_outages(time.monotonic() - started)
        calls += 1
        begin = time.perf_counter()
        call(calls)
        latencies.append((time.perf_counter() - begin) * 1e6)
        time.sleep(0.001)
    ended = time.monotonic() - started
    report_outages(ended)
    stats = breaker.get_stats()
    summary = {
        "calls": calls,
        "successes": calls - counts["fallbacks"],
        "fallbacks": counts["fallbacks"],
        "timeouts": counts["timeouts"],
        "rejections": stats["rejections"],
        "retries": counts["retries"],
        "times opened": stats["opened"],
        "outages": len(outages),
        "p50 latency (us)": round(_percentile(latencies, 50), 1),
        "p99 latency (us)": round(_percentile(latencies, 99), 1),
    }
    out("")
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        out(f"  {key:<{width}}  {value:>10}")
    for begin_at, end_at in outages:
        if end_at == math.inf:
            out(f"  outage from {begin_at:.3f}s, still going at the end ({ended:.3f}s)")
        else:
            out(f"  outage from {begin_at:.3f}s to {end_at:.3f}s")
    registry.remove(name)
    return summary
