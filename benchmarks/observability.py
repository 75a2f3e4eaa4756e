"""What observability costs: calls with every exporter on against the same calls without, and a scrape.

*Observed* means, at once: a :class:`hardy.metrics.prometheus.HardyCollector`
registered, OpenTelemetry instruments on an SDK meter provider
(``hardy.metrics.otel.instrument``) with their span events, a recording span
current, and a ``hardy.events`` subscriber. Each round times the same
wrapper twice, in random order: once with all of that on, once with all of it
off; switching happens outside the timed loop. The figure is the ratio of the
medians over the rounds (``observed / plain``).

The scrape: ``HardyCollector.collect()`` over 10,000 live breakers (what
hardy does when Prometheus scrapes), and beside it the whole text exposition
(``generate_latest``, prometheus-client's own formatting of the 100,000 lines).

Usage::

    python -m benchmarks.observability
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hardy
import hardy.events
import hardy.metrics.otel
import hardy.metrics.prometheus

from ._harness import load_core, unrolled

CALLS = 100_000
BREAKERS = 10_000


def work(x: int) -> int:
    return x


@contextmanager
def observation() -> Iterator[None]:
    """Every exporter on, for the duration of the block."""
    import prometheus_client
    from opentelemetry import context, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    registry = prometheus_client.CollectorRegistry()
    collector = hardy.metrics.prometheus.register(registry)
    instrumentation = hardy.metrics.otel.instrument(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    unsubscribe = hardy.events.subscribe(lambda event: None)
    span = TracerProvider().get_tracer("bench").start_span("observed")
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        context.detach(token)
        span.end()
        unsubscribe()
        instrumentation.close()
        registry.unregister(collector)


def cases() -> dict[str, Callable[[], Any]]:
    """The compiled wrappers whose success path is measured."""
    c = load_core("c")
    return {
        "breaker-closed-success": c.CircuitBreaker("observed-bench")(work),
        "retry-first-attempt-success": c.retrying(c.RetryConfig(), work),
    }


def overhead(rounds: int = 21) -> dict[str, dict[str, float]]:
    """Per case: ns per call plain and observed (medians over ``rounds``) and their ratio."""
    result: dict[str, dict[str, float]] = {}
    for name, wrapper in cases().items():
        run = unrolled(wrapper, 1, calls=CALLS)
        run()  # warm up
        samples: dict[str, list[float]] = {"plain": [], "observed": []}
        for _ in range(rounds):
            for mode in random.sample(["plain", "observed"], 2):
                gc.collect()
                if mode == "observed":
                    with observation():
                        started = time.perf_counter()
                        run()
                        elapsed = time.perf_counter() - started
                else:
                    started = time.perf_counter()
                    run()
                    elapsed = time.perf_counter() - started
                samples[mode].append(elapsed / CALLS * 1e9)
        plain = statistics.median(samples["plain"])
        observed = statistics.median(samples["observed"])
        result[name] = {"plain_ns": plain, "observed_ns": observed, "ratio": observed / plain}
    return result


def scrape(rounds: int = 7) -> dict[str, float]:
    """Milliseconds to collect 10,000 breakers (median), and the whole text exposition beside it."""
    import prometheus_client

    c = load_core("c")
    breakers = [c.CircuitBreaker(f"scrape-{i}") for i in range(BREAKERS)]
    registry = prometheus_client.CollectorRegistry()
    collector = hardy.metrics.prometheus.register(registry)
    collect_ms: list[float] = []
    exposition_ms: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        families = list(collector.collect())
        collect_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        prometheus_client.generate_latest(registry)
        exposition_ms.append((time.perf_counter() - started) * 1000)
    assert sum(len(f.samples) for f in families) >= 8 * BREAKERS
    # Every breaker busy between two scrapes: each one's counts changed, none of its samples reused.
    changed_ms: list[float] = []
    for _ in range(rounds):
        for breaker in breakers:
            breaker.call(work, 1)
        started = time.perf_counter()
        list(collector.collect())
        changed_ms.append((time.perf_counter() - started) * 1000)
    del breakers
    return {
        "collect_ms": statistics.median(collect_ms),
        "exposition_ms": statistics.median(exposition_ms),
        "collect_all_changed_ms": statistics.median(changed_ms),
    }


def render(observed: dict[str, dict[str, float]], scraped: dict[str, float]) -> list[str]:
    """The report's section (benchmarks/report.py)."""
    lines = [
        "",
        "## Observability",
        "",
        "Every exporter on (Prometheus collector, OpenTelemetry instruments and span events, a recording span,",
        "a hardy.events subscriber) against all off, same wrapper, interleaved rounds (medians):",
        "",
        "| case | off | on | on / off |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {case} | {f['plain_ns']:.1f} ns | {f['observed_ns']:.1f} ns | {f['ratio']:.3f} |"
        for case, f in observed.items()
    ]
    lines += [
        "",
        f"Scrape of {BREAKERS:,} breakers: `HardyCollector.collect()` {scraped['collect_ms']:.1f} ms; "
        f"with prometheus-client's text exposition {scraped['exposition_ms']:.1f} ms more. "
        f"With every breaker's counts changed since the last scrape: {scraped['collect_all_changed_ms']:.1f} ms.",
        "",
    ]
    return lines


def main() -> None:
    for name, figures in overhead().items():
        print(
            f"{name}: plain {figures['plain_ns']:.1f} ns, observed {figures['observed_ns']:.1f} ns, "
            f"ratio {figures['ratio']:.3f} (target <= 1.05)"
        )
    scraped = scrape()
    print(
        f"scrape of {BREAKERS:,} breakers: collect {scraped['collect_ms']:.1f} ms (target <= 50), "
        f"text exposition {scraped['exposition_ms']:.1f} ms, every breaker changed "
        f"{scraped['collect_all_changed_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
