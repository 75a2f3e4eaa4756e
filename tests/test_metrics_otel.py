"""hardy.metrics.otel: observable instruments and span events, read with the SDK's in-memory reader and exporter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hardy
import hardy.events
import hardy.metrics.otel

from .conftest import FakeClock


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    metric_reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[metric_reader])
    instrumentation = hardy.metrics.otel.instrument(provider)
    yield metric_reader
    instrumentation.close()
    provider.shutdown()


@pytest.fixture
def tracer() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    if data is None:  # nothing measured at all
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "hardy"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    return found


def test_instruments_read_the_breakers_counts(clock: FakeClock, reader: InMemoryMetricReader) -> None:
    name = f"search-{hardy.IMPLEMENTATION}"  # the other core's run may still be alive
    breaker = hardy.CircuitBreaker(name, failure_threshold=1, reset_timeout=5, half_open_max_calls=1, clock=clock)
    breaker.call(lambda: 1)
    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(hardy.CircuitOpenError):
        breaker.call(lambda: 1)
    found = points(reader)
    calls = {
        outcome: found[("hardy_circuit_breaker_calls", (("name", name), ("outcome", outcome)))]
        for outcome in ("success", "failure", "ignored", "rejected")
    }
    assert calls == {"success": 1, "failure": 1, "ignored": 0, "rejected": 1}
    assert found[("hardy_circuit_breaker_state", (("name", name), ("state", "open")))] == 1
    assert found[("hardy_circuit_breaker_state", (("name", name), ("state", "closed")))] == 0
    clock.advance(5.0)
    breaker.call(lambda: 2)  # the trial closes it
    found = points(reader)  # a second collection reads afresh
    assert found[("hardy_circuit_breaker_state", (("name", name), ("state", "closed")))] == 1
    assert found[("hardy_circuit_breaker_calls", (("name", name), ("outcome", "success")))] == 2
    assert found[("hardy_circuit_breaker_opened", (("name", name),))] == 1


def test_instruments_read_retries_timeouts_and_fallbacks(reader: InMemoryMetricReader) -> None:
    @hardy.retry(max_attempts=3, initial_delay=0)
    def always() -> None:
        raise Boom("always")

    name = "tests.test_metrics_otel.test_instruments_read_retries_timeouts_and_fallbacks.<locals>.always"
    before = points(reader)
    with pytest.raises(Boom):
        always()
    assert hardy.Fallback("otel-chain", [fail], default_value=1).execute() == 1

    async def slow() -> None:
        await asyncio.sleep(10)

    async def time_out() -> None:
        with pytest.raises(hardy.TimeoutError):
            await hardy.with_timeout(slow(), 0.01)

    asyncio.run(time_out())
    after = points(reader)

    def added(metric: str, source: str) -> float:
        key = (metric, (("name", source),))
        return after[key] - before.get(key, 0)

    assert added("hardy_retries", name) == 2
    assert added("hardy_retry_giveups", name) == 1
    assert added("hardy_fallbacks", "otel-chain") == 1
    assert added("hardy_timeouts", "coroutine") == 1


def test_span_events_on_failure_paths_only(clock: FakeClock, reader: InMemoryMetricReader, tracer: Any) -> None:
    tracer_, exporter = tracer
    breaker = hardy.CircuitBreaker("span-db", failure_threshold=1, reset_timeout=5, clock=clock)
    calls = {"n": 0}

    @hardy.retry(max_attempts=2, initial_delay=0)
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom("first")
        return "ok"

    with tracer_.start_as_current_span("success"):
        breaker.call(lambda: 1)
        assert flaky() == "ok"
    with tracer_.start_as_current_span("plain"):
        breaker.call(lambda: 1)
        assert hardy.retry(max_attempts=2)(lambda: "fine")() == "fine"
        assert hardy.fallback(lambda: "spare")(lambda: "primary")() == "primary"
    with tracer_.start_as_current_span("failing"):
        with pytest.raises(Boom):
            breaker.call(fail)
        with pytest.raises(hardy.CircuitOpenError):
            breaker.call(lambda: 1)
        assert hardy.Fallback("chain", [fail], default_value=0).execute() == 0
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert [e.name for e in spans["success"].events] == ["hardy.retry"]
    retry = spans["success"].events[0]
    assert dict(retry.attributes or {}) == {
        "hardy.source": "tests.test_metrics_otel.test_span_events_on_failure_paths_only.<locals>.flaky",
        "hardy.attempt": 1,
        "hardy.delay": 0.0,
        "hardy.error_type": "Boom",
    }
    assert spans["plain"].events == ()  # a plain success adds nothing
    failing = [(e.name, dict(e.attributes or {}).get("hardy.source")) for e in spans["failing"].events]
    assert failing == [
        ("hardy.state_change", "span-db"),
        ("hardy.rejection", "span-db"),
        ("hardy.fallback", "chain"),
    ]
    assert dict(spans["failing"].events[0].attributes or {})["hardy.new_state"] == "open"


def test_span_events_for_a_timeout(reader: InMemoryMetricReader, tracer: Any) -> None:
    tracer_, exporter = tracer

    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        with tracer_.start_as_current_span("timed"):
            assert await hardy.with_timeout(slow(), 0.01, fallback_value="late") == "late"

    asyncio.run(main())
    (span,) = exporter.get_finished_spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("hardy.timeout", {"hardy.source": "coroutine", "hardy.seconds": 0.01}),
        ("hardy.fallback", {"hardy.source": "coroutine", "hardy.via": "timeout", "hardy.error_type": "TimeoutError"}),
    ]


def test_close_stops_readings_and_span_events(tracer: Any) -> None:
    tracer_, exporter = tracer
    metric_reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[metric_reader])
    instrumentation = hardy.metrics.otel.instrument(provider)
    breaker = hardy.CircuitBreaker("closing")
    assert ("hardy_circuit_breaker_state", (("name", "closing"), ("state", "closed"))) in points(metric_reader)
    with pytest.raises(ValueError, match="already instrumented"):
        hardy.metrics.otel.instrument(provider)
    instrumentation.close()
    instrumentation.close()
    assert not any(name == "closing" for _, labels in points(metric_reader) for key, name in labels if key == "name")
    with tracer_.start_as_current_span("after"), pytest.raises(Boom):
        hardy.retry(max_attempts=1)(fail)()
    assert exporter.get_finished_spans()[0].events == ()
    assert breaker.is_closed
    again = hardy.metrics.otel.instrument(provider, span_events=False)  # allowed once closed
    again.close()
    provider.shutdown()


def test_a_meter_provider_is_checked() -> None:
    with pytest.raises(TypeError, match="meter_provider must be"):
        hardy.metrics.otel.instrument(42)


def test_the_global_meter_provider_by_default() -> None:
    instrumentation = hardy.metrics.otel.instrument(span_events=False)
    try:
        assert instrumentation.instruments  # made on the API's default (no-op) provider
    finally:
        instrumentation.close()


def test_instruments_read_bulkheads_and_rate_limiters(clock: FakeClock, reader: InMemoryMetricReader) -> None:
    pool = hardy.Bulkhead(f"otel-pool-{hardy.IMPLEMENTATION}", max_concurrent=1)
    limiter = hardy.RateLimiter(f"otel-api-{hardy.IMPLEMENTATION}", rate=1, period=2.0, clock=clock)
    with pool:
        assert pool.try_acquire() is False
        found = points(reader)
    assert found[("hardy_bulkhead_concurrent_calls", (("name", pool.name),))] == 1
    assert found[("hardy_bulkhead_max_concurrent_calls", (("name", pool.name),))] == 1
    assert found[("hardy_bulkhead_waiting_calls", (("name", pool.name),))] == 0
    assert found[("hardy_bulkhead_calls", (("name", pool.name), ("outcome", "admitted")))] == 1
    assert found[("hardy_bulkhead_calls", (("name", pool.name), ("outcome", "rejected")))] == 1
    assert found[("hardy_bulkhead_waited_calls", (("name", pool.name),))] == 0
    with limiter:
        pass
    with pytest.raises(hardy.RateLimitExceededError):
        limiter.acquire()
    found = points(reader)
    assert found[("hardy_bulkhead_concurrent_calls", (("name", pool.name),))] == 0
    assert found[("hardy_rate_limiter_calls", (("name", limiter.name), ("outcome", "permitted")))] == 1
    assert found[("hardy_rate_limiter_calls", (("name", limiter.name), ("outcome", "rejected")))] == 1
    assert found[("hardy_rate_limiter_waited_calls", (("name", limiter.name),))] == 0
    assert found[("hardy_rate_limiter_available_permits", (("name", limiter.name),))] == 0
    assert found[("hardy_rate_limiter_burst_permits", (("name", limiter.name),))] == 1
    assert found[("hardy_rate_limiter_permits_per_second", (("name", limiter.name),))] == 0.5


def test_span_events_for_bulkhead_and_rate_limiter_rejections(
    clock: FakeClock, reader: InMemoryMetricReader, tracer: Any
) -> None:
    tracer_, exporter = tracer
    pool = hardy.Bulkhead("span-pool", max_concurrent=1)
    waiting_pool = hardy.Bulkhead("span-queue", max_concurrent=1, max_wait=0.01)
    limiter = hardy.RateLimiter("span-api", rate=1, period=4.0, clock=clock)
    guarded = hardy.bulkhead("span-guarded", max_concurrent=1)(lambda: 1)
    limited = hardy.rate_limit("span-limited", rate=1, period=60.0)(lambda: 1)

    async def refused_async() -> None:
        with pytest.raises(hardy.BulkheadFullError):
            await pool.acquire_async()
        with pytest.raises(hardy.RateLimitExceededError):
            await limiter.acquire_async()

    with tracer_.start_as_current_span("admitted"):
        with pool:
            pass
        with limiter:
            pass
        assert guarded() == 1
        assert limited() == 1
    with tracer_.start_as_current_span("refused"):
        with pool:
            with pytest.raises(hardy.BulkheadFullError):
                pool.acquire()
            assert pool.try_acquire() is False  # counted, but no call was refused: no event
            asyncio.run(refused_async())
        with waiting_pool, pytest.raises(hardy.BulkheadFullError):
            waiting_pool.acquire()  # waits 10 ms for a slot that stays taken
        with pytest.raises(hardy.RateLimitExceededError):
            limiter.acquire()
        with pytest.raises(hardy.RateLimitExceededError):
            limited()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["admitted"].events == ()
    refused = [dict(e.attributes or {}) for e in spans["refused"].events]
    assert {e.name for e in spans["refused"].events} == {"hardy.rejection"}
    assert [(a["hardy.source"], a["hardy.by"]) for a in refused] == [
        ("span-pool", "bulkhead"),
        ("span-pool", "bulkhead"),
        ("span-api", "rate_limiter"),
        ("span-queue", "bulkhead"),
        ("span-api", "rate_limiter"),
        ("span-limited", "rate_limiter"),
    ]
    assert refused[0]["hardy.max_concurrent"] == 1
    assert refused[0]["hardy.waited"] == 0.0
    assert refused[3]["hardy.waited"] == 0.01
    assert refused[2]["hardy.retry_after"] == pytest.approx(4.0)
    assert 0.0 < refused[5]["hardy.retry_after"] <= 60.0
    # The metrics count every rejection, try_acquire() included.
    found = points(reader)
    assert found[("hardy_bulkhead_calls", (("name", "span-pool"), ("outcome", "rejected")))] >= 3


def test_a_rejection_subscriber_may_use_the_bulkhead_that_refused() -> None:
    """The event comes after the bulkhead's lock is released: reading it there must not deadlock."""
    pool = hardy.Bulkhead(f"reentry-{hardy.IMPLEMENTATION}", max_concurrent=1)
    read: list[Any] = []

    def on_rejection(event: hardy.events.Event) -> None:
        read.append((event.data["by"], pool.get_stats()["rejections"], pool.try_acquire()))

    stop = hardy.events.subscribe(on_rejection, kinds={"rejection"})
    errors: list[BaseException] = []

    def refuse() -> None:
        try:
            with pool, pytest.raises(hardy.BulkheadFullError):
                pool.acquire()
        except BaseException as error:
            errors.append(error)

    try:
        worker = threading.Thread(target=refuse, daemon=True)
        worker.start()
        worker.join(30)
        assert not worker.is_alive(), "the subscriber deadlocked on the bulkhead's lock"
    finally:
        stop()
    assert errors == []
    assert read == [("bulkhead", 1, False)]


def test_a_breaker_rejection_says_it_comes_from_a_breaker(reader: InMemoryMetricReader) -> None:
    seen: list[hardy.events.Event] = []
    stop = hardy.events.subscribe(seen.append, kinds={"rejection"})
    try:
        breaker = hardy.CircuitBreaker("by-breaker", failure_threshold=1)
        with pytest.raises(Boom):
            breaker.call(fail)
        with pytest.raises(hardy.CircuitOpenError):
            breaker.call(lambda: 1)
    finally:
        stop()
    assert [(e.source, e.data["by"]) for e in seen] == [("by-breaker", "circuit_breaker")]
    assert seen[0].data["reset_time"] > 0


class Abort(BaseException):
    pass


def test_a_rejection_subscriber_raising_a_base_exception_leaves_no_slot_or_permit_taken() -> None:
    pool = hardy.Bulkhead(f"abort-pool-{hardy.IMPLEMENTATION}", max_concurrent=1)
    waiting_pool = hardy.Bulkhead(f"abort-queue-{hardy.IMPLEMENTATION}", max_concurrent=1, max_wait=0.01)
    limiter = hardy.RateLimiter(f"abort-api-{hardy.IMPLEMENTATION}", rate=1, period=60.0)

    def abort(event: hardy.events.Event) -> None:
        raise Abort(event.source)

    stop = hardy.events.subscribe(abort, kinds={"rejection"})
    try:
        for full in (pool, waiting_pool):
            with full:
                with pytest.raises(Abort):
                    full.acquire()
                with pytest.raises(Abort):
                    asyncio.run(full.acquire_async())
            assert (full.active, full.waiting) == (0, 0)
        limiter.acquire()
        with pytest.raises(Abort):
            limiter.acquire()
        with pytest.raises(Abort):
            asyncio.run(limiter.acquire_async())
    finally:
        stop()
    # Each rejection was counted once, and nothing is held: the next calls behave as before.
    assert pool.get_stats()["rejections"] == 2
    assert waiting_pool.get_stats()["rejections"] == 2
    assert limiter.get_stats()["rejections"] == 2
    with pool, waiting_pool:
        pass
    with pytest.raises(hardy.RateLimitExceededError):
        limiter.acquire()
