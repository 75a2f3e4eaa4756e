"""What observability costs: calls with every exporter on against the same calls without, and a scrape.

*Observed* means, at once: a :class:`hardy.metrics.prometheus.HardyCollector`
registered, OpenTelemetry instruments on an SDK meter provider
(``hardy.metrics.otel.instrument``) with their span events, a recording span
current, and a ``hardy.events`` subscriber. Each round times the same
wrapper twice, in random order: once with all of that on, once with all of it
off; switching happens outside the timed loop. The figure is the ratio of the
medians over the rounds (``observed / plain``).

The scrape: ``HardyCollector.collect()`` over 10,000 live breakers (what
hardy does when Prometheus scrapes), three ways: a process's first scrape
(every label mapping and Sample made), one where nothing changed since the
last, one where every breaker's counts changed; and beside them the whole text
exposition (``generate_latest``, prometheus-client's own formatting of the
100,000 lines). The pure twin's three are reported beside.

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


@contextmanager
def _builder(implementation: str) -> Iterator[None]:
    """Scrapes made by ``implementation``'s builder (hardy.metrics takes the running core's)."""
    from hardy import _core

    running = _core.IMPLEMENTATION
    _core.IMPLEMENTATION = implementation  # type: ignore[misc]
    try:
        yield
    finally:
        _core.IMPLEMENTATION = running  # type: ignore[misc]


def _collect_ms(collector: Any) -> tuple[float, int]:
    started = time.perf_counter()
    metrics = list(collector.collect())
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, sum(len(metric.samples) for metric in metrics)


def _scrapes(implementation: str, rounds: int) -> dict[str, float]:
    """Medians over ``rounds`` of each kind of scrape, on one core's breakers and builder.

    Each round makes 10,000 breakers of new names and a new collector, so its
    first scrape is a process's first: every label mapping and Sample is made
    (the names' label cache is emptied, as in a new process). Then three
    scrapes with nothing changed (the second of the process, which still
    touches fresh memory for its copies, and two of the steady state),
    prometheus-client's whole text exposition, and a scrape after a call
    through every breaker (all counts changed, no Sample reused).
    """
    import prometheus_client

    from hardy.metrics import _sources

    core = load_core(implementation)
    figures: dict[str, list[float]] = {"first_ms": [], "unchanged_ms": [], "all_changed_ms": [], "exposition_ms": []}
    with _builder(implementation):
        for round_ in range(rounds):
            _sources._labels.clear()  # pyright: ignore[reportPrivateUsage]
            breakers = [core.CircuitBreaker(f"scrape-{round_}-{i}") for i in range(BREAKERS)]
            registry = prometheus_client.CollectorRegistry()
            collector = hardy.metrics.prometheus.register(registry)
            gc.collect()
            first, samples = _collect_ms(collector)
            assert samples >= 8 * BREAKERS
            figures["first_ms"].append(first)
            for _ in range(3):  # the second scrape of a process, and two more of the steady state
                figures["unchanged_ms"].append(_collect_ms(collector)[0])
            started = time.perf_counter()
            prometheus_client.generate_latest(registry)
            figures["exposition_ms"].append((time.perf_counter() - started) * 1000)
            for breaker in breakers:
                breaker.call(work, 1)
            figures["all_changed_ms"].append(_collect_ms(collector)[0])
            registry.unregister(collector)
            del breakers, collector
    return {key: statistics.median(values) for key, values in figures.items()}


def scrape(rounds: int = 7, twin_rounds: int = 3) -> dict[str, float]:
    """Milliseconds to collect 10,000 breakers (medians): first scrape, unchanged, all changed; the twin's too.

    ``worst_ms`` is the slowest of the compiled core's three (the target's
    figure); ``collect_ms`` (unchanged) and ``collect_all_changed_ms`` keep
    their earlier names.
    """
    figures = _scrapes("c", rounds)
    figures["worst_ms"] = max(figures["first_ms"], figures["unchanged_ms"], figures["all_changed_ms"])
    figures["collect_ms"] = figures["unchanged_ms"]
    figures["collect_all_changed_ms"] = figures["all_changed_ms"]
    for key, value in _scrapes("py", twin_rounds).items():
        figures[f"py_{key}"] = value
    gc.collect()
    return figures


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
        f"Scrape of {BREAKERS:,} breakers, `HardyCollector.collect()` (medians): a process's first scrape "
        f"{scraped['first_ms']:.1f} ms, nothing changed since the last {scraped['unchanged_ms']:.1f} ms, every "
        f"breaker's counts changed {scraped['all_changed_ms']:.1f} ms; prometheus-client's text exposition of it all "
        f"{scraped['exposition_ms']:.1f} ms. The pure twin: {scraped['py_first_ms']:.1f}, "
        f"{scraped['py_unchanged_ms']:.1f} and {scraped['py_all_changed_ms']:.1f} ms.",
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
        f"scrape of {BREAKERS:,} breakers (target <= 50 ms each): first {scraped['first_ms']:.1f} ms, "
        f"unchanged {scraped['unchanged_ms']:.1f} ms, every breaker changed {scraped['all_changed_ms']:.1f} ms, "
        f"text exposition {scraped['exposition_ms']:.1f} ms; twin: first {scraped['py_first_ms']:.1f} ms, "
        f"unchanged {scraped['py_unchanged_ms']:.1f} ms, every breaker changed {scraped['py_all_changed_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
