"""hardy.metrics.prometheus: a real scrape over HTTP on loopback, parsed by prometheus-client's parser."""

from __future__ import annotations

import asyncio
import gc
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

import hardy
import hardy.metrics
import hardy.metrics.prometheus
from hardy.metrics import Family

from .conftest import FakeClock


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


@pytest.fixture
def scrape() -> Iterator[Any]:
    """A function that scrapes a fresh registry holding a HardyCollector over HTTP."""
    registry = prometheus_client.CollectorRegistry()
    hardy.metrics.prometheus.register(registry)
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_port

    def get() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        get.types = {family.name: family.type for family in text_string_to_metric_families(text)}  # type: ignore[attr-defined]
        return samples

    yield get
    server.shutdown()
    server.server_close()
    thread.join(10)


def value(samples: dict[Any, float], metric: str, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def fail() -> None:
    raise Boom("down")


def test_a_breaker_state_and_calls_by_outcome(clock: FakeClock, scrape: Any) -> None:
    gc.collect()  # breakers of earlier tests named "payments" would be added up with this one
    breaker = hardy.CircuitBreaker(
        "payments", failure_threshold=2, reset_timeout=30, excluded_exceptions=(Ignored,), clock=clock
    )
    protected = breaker(lambda: "ok")
    for _ in range(3):
        assert protected() == "ok"

    def ignored() -> None:
        raise Ignored

    with pytest.raises(Ignored):
        breaker.call(ignored)
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_state", name="payments", state="closed") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="payments", state="open") == 0.0
    assert value(samples, "hardy_circuit_breaker_state", name="payments", state="half_open") == 0.0
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    for _ in range(4):
        with pytest.raises(hardy.CircuitOpenError):
            protected()
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_state", name="payments", state="open") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="payments", state="closed") == 0.0
    calls = {
        outcome: value(samples, "hardy_circuit_breaker_calls_total", name="payments", outcome=outcome)
        for outcome in ("success", "failure", "ignored", "rejected")
    }
    assert calls == {"success": 3.0, "failure": 2.0, "ignored": 1.0, "rejected": 4.0}
    assert value(samples, "hardy_circuit_breaker_opened_total", name="payments") == 1.0
    clock.advance(30.0)  # due for a trial: the scrape says half-open, as get_stats() does
    assert value(scrape(), "hardy_circuit_breaker_state", name="payments", state="half_open") == 1.0
    assert scrape.types["hardy_circuit_breaker_calls"] == "counter"
    assert scrape.types["hardy_circuit_breaker_state"] == "gauge"


def test_breakers_sharing_a_name_are_added_up_and_dead_ones_leave(scrape: Any) -> None:
    first = hardy.CircuitBreaker("twin", failure_threshold=1)
    second = hardy.CircuitBreaker("twin", failure_threshold=1)
    first.call(lambda: 1)
    second.call(lambda: 1)
    with pytest.raises(Boom):
        second.call(fail)
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_calls_total", name="twin", outcome="success") == 2.0
    assert value(samples, "hardy_circuit_breaker_state", name="twin", state="closed") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="twin", state="open") == 1.0
    del first, second
    gc.collect()
    assert not any(labels == (("name", "twin"), ("outcome", "success")) for _, labels in scrape())


def test_retries_give_ups_timeouts_and_fallbacks(scrape: Any) -> None:
    calls = {"n": 0}

    @hardy.retry(max_attempts=3, initial_delay=0)
    def sometimes() -> str:
        calls["n"] += 1
        if calls["n"] % 2:
            raise Boom("odd")
        return "even"

    @hardy.retry(max_attempts=2, initial_delay=0)
    def never() -> None:
        raise Boom("never")

    @hardy.retry(max_attempts=2, initial_delay=0)
    def untouched() -> int:
        return 1

    name = "tests.test_metrics_prometheus.test_retries_give_ups_timeouts_and_fallbacks.<locals>."
    # Counts are per name for the process's life (the other core's run of this test counted too): compare.
    before = scrape()
    assert ("hardy_retries_total", (("name", name + "untouched"),)) in before

    def counted(metric: str, source: str) -> float:
        return value(samples, metric, name=source) - before.get((metric, (("name", source),)), 0.0)

    assert sometimes() == "even"
    assert sometimes() == "even"
    for _ in range(3):
        with pytest.raises(Boom):
            never()
    assert untouched() == 1

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    async def timeouts() -> None:
        assert await hardy.with_timeout(slow(), 0.01, fallback_value="cached") == "cached"
        with pytest.raises(hardy.TimeoutError):
            await hardy.with_timeout(slow(), 0.01)

    asyncio.run(timeouts())
    assert hardy.Fallback("profile", [fail, lambda: "spare"]).execute() == "spare"
    assert hardy.Fallback("profile", [lambda: "primary"]).execute() == "primary"
    samples = scrape()
    assert counted("hardy_retries_total", name + "sometimes") == 2.0
    assert counted("hardy_retry_giveups_total", name + "sometimes") == 0.0
    assert counted("hardy_retries_total", name + "never") == 3.0
    assert counted("hardy_retry_giveups_total", name + "never") == 3.0
    assert counted("hardy_retries_total", name + "untouched") == 0.0
    assert counted("hardy_timeouts_total", "coroutine") == 2.0
    assert counted("hardy_fallbacks_total", "coroutine") == 1.0
    assert counted("hardy_fallbacks_total", "profile") == 1.0


def test_register_uses_the_default_registry_and_refuses_a_second_collector() -> None:
    collector = hardy.metrics.prometheus.register()
    try:
        breaker = hardy.CircuitBreaker("default-registry")
        text = prometheus_client.generate_latest().decode()
        assert 'hardy_circuit_breaker_state{name="default-registry",state="closed"} 1.0' in text
        with pytest.raises(ValueError, match="already has a HardyCollector"):
            hardy.metrics.prometheus.register()
    finally:
        prometheus_client.REGISTRY.unregister(collector)
    assert breaker.is_closed
    with pytest.raises(TypeError, match="registry must be"):
        hardy.metrics.prometheus.register(42)  # type: ignore[arg-type]


def test_a_source_that_raises_is_logged_and_the_rest_exported(scrape: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[Family]:
        raise RuntimeError("source bug")

    def extra() -> list[Family]:
        return [
            Family("hardy_extra_things", "gauge", "A component of another helper.", ("name",), [({"name": "x"}, 7)])
        ]

    hardy.metrics.add_source(broken)
    hardy.metrics.add_source(extra)
    hardy.metrics.add_source(extra)  # once per function
    breaker = hardy.CircuitBreaker("still-here")
    try:
        with caplog.at_level(logging.ERROR, logger="hardy"):
            samples = scrape()
    finally:
        hardy.metrics.remove_source(broken)
        hardy.metrics.remove_source(extra)
    assert value(samples, "hardy_extra_things", name="x") == 7.0
    assert value(samples, "hardy_circuit_breaker_state", name="still-here", state="closed") == 1.0
    assert [r.getMessage()[:20] for r in caplog.records if r.name == "hardy.metrics"] == ["metric source <funct"]
    assert ("hardy_extra_things", (("name", "x"),)) not in scrape()
    assert breaker.is_closed
    with pytest.raises(TypeError, match="source must be callable"):
        hardy.metrics.add_source(42)  # type: ignore[arg-type]


def test_the_manual_states_have_their_gauges(scrape: Any) -> None:
    forced, disabled = hardy.CircuitBreaker("forced-gauge"), hardy.CircuitBreaker("disabled-gauge")
    forced.force_open()
    disabled.disable()
    twin = hardy.CircuitBreaker("forced-gauge")  # two of one name: added up
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_state", name="forced-gauge", state="forced_open") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="forced-gauge", state="closed") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="disabled-gauge", state="disabled") == 1.0
    assert value(samples, "hardy_circuit_breaker_state", name="disabled-gauge", state="closed") == 0.0
    assert twin.is_closed


def test_scrapes_follow_breakers_that_change_come_and_go(scrape: Any) -> None:
    tag = hardy.IMPLEMENTATION
    first, second, third = (hardy.CircuitBreaker(f"follow-{tag}-{i}", failure_threshold=1) for i in range(3))
    first.call(lambda: 1)
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_calls_total", name=f"follow-{tag}-0", outcome="success") == 1.0
    # Changed, gone, new, unchanged: each series still says what its breaker says.
    first.call(lambda: 1)
    with pytest.raises(Boom):
        third.call(fail)
    del second
    gc.collect()
    fourth = hardy.CircuitBreaker(f"follow-{tag}-3")
    fourth.call(lambda: 1)
    for _ in range(2):  # the second scrape reuses what the first made of the unchanged breakers
        samples = scrape()
        assert value(samples, "hardy_circuit_breaker_calls_total", name=f"follow-{tag}-0", outcome="success") == 2.0
        assert ("hardy_circuit_breaker_opened_total", (("name", f"follow-{tag}-1"),)) not in samples
        assert value(samples, "hardy_circuit_breaker_state", name=f"follow-{tag}-2", state="open") == 1.0
        assert value(samples, "hardy_circuit_breaker_state", name=f"follow-{tag}-2", state="closed") == 0.0
        assert value(samples, "hardy_circuit_breaker_opened_total", name=f"follow-{tag}-2") == 1.0
        assert value(samples, "hardy_circuit_breaker_calls_total", name=f"follow-{tag}-3", outcome="success") == 1.0
    third.reset()
    samples = scrape()
    assert value(samples, "hardy_circuit_breaker_state", name=f"follow-{tag}-2", state="closed") == 1.0
    assert value(samples, "hardy_circuit_breaker_opened_total", name=f"follow-{tag}-2") == 1.0
    assert value(samples, "hardy_circuit_breaker_calls_total", name=f"follow-{tag}-2", outcome="failure") == 1.0


def test_a_bulkhead_calls_waits_and_slots(scrape: Any) -> None:
    name = f"pool-{hardy.IMPLEMENTATION}"
    pool = hardy.Bulkhead(name, max_concurrent=1, max_wait=30)
    seen: dict[str, Any] = {}

    async def holder(inside: asyncio.Event, leave: asyncio.Event) -> None:
        async with pool:
            inside.set()
            await leave.wait()

    async def waiter() -> None:
        async with pool:
            pass

    async def main() -> None:
        inside, leave = asyncio.Event(), asyncio.Event()
        held = asyncio.ensure_future(holder(inside, leave))
        await inside.wait()
        queued = asyncio.ensure_future(waiter())
        while pool.waiting == 0:
            await asyncio.sleep(0)
        seen["busy"] = scrape()  # blocks the loop: the server runs on its own thread
        leave.set()
        await asyncio.gather(held, queued)

    asyncio.run(main())
    busy = seen["busy"]
    assert value(busy, "hardy_bulkhead_concurrent_calls", name=name) == 1.0
    assert value(busy, "hardy_bulkhead_waiting_calls", name=name) == 1.0
    assert value(busy, "hardy_bulkhead_max_concurrent_calls", name=name) == 1.0
    assert value(busy, "hardy_bulkhead_calls_total", name=name, outcome="admitted") == 1.0
    assert value(busy, "hardy_bulkhead_waited_calls_total", name=name) == 0.0
    with pool:
        assert pool.try_acquire() is False  # full: counted as a rejection
    samples = scrape()
    assert value(samples, "hardy_bulkhead_calls_total", name=name, outcome="admitted") == 3.0
    assert value(samples, "hardy_bulkhead_calls_total", name=name, outcome="rejected") == 1.0
    assert value(samples, "hardy_bulkhead_waited_calls_total", name=name) == 1.0
    assert value(samples, "hardy_bulkhead_concurrent_calls", name=name) == 0.0
    assert value(samples, "hardy_bulkhead_waiting_calls", name=name) == 0.0
    assert pool.get_stats()["rejections"] == 1
    assert scrape.types["hardy_bulkhead_calls"] == "counter"
    assert scrape.types["hardy_bulkhead_concurrent_calls"] == "gauge"


def test_bulkheads_from_the_decorator_sharing_a_name_and_gone(scrape: Any) -> None:
    name = f"shared-pool-{hardy.IMPLEMENTATION}"

    @hardy.bulkhead(name, max_concurrent=2)
    def work() -> int:
        return 1

    assert work() == 1
    other = hardy.Bulkhead(name, max_concurrent=3)  # made by hand beside the registry's: added up
    with pytest.raises(hardy.BulkheadFullError), other, other, other, other:
        pass
    samples = scrape()
    assert value(samples, "hardy_bulkhead_max_concurrent_calls", name=name) == 5.0
    assert value(samples, "hardy_bulkhead_calls_total", name=name, outcome="admitted") == 4.0
    assert value(samples, "hardy_bulkhead_calls_total", name=name, outcome="rejected") == 1.0
    del other
    gc.collect()
    samples = scrape()
    assert value(samples, "hardy_bulkhead_max_concurrent_calls", name=name) == 2.0
    hardy.bulkheads.remove(name)
    del work
    gc.collect()
    assert ("hardy_bulkhead_max_concurrent_calls", (("name", name),)) not in scrape()


def test_a_rate_limiter_calls_waits_and_permits(clock: FakeClock, scrape: Any) -> None:
    name = f"api-{hardy.IMPLEMENTATION}"
    limiter = hardy.RateLimiter(name, rate=2, period=1.0, clock=clock)
    samples = scrape()
    assert value(samples, "hardy_rate_limiter_available_permits", name=name) == 2.0
    assert value(samples, "hardy_rate_limiter_burst_permits", name=name) == 2.0
    assert value(samples, "hardy_rate_limiter_permits_per_second", name=name) == 2.0
    with limiter, limiter:
        pass
    with pytest.raises(hardy.RateLimitExceededError):
        limiter.acquire()
    samples = scrape()
    assert value(samples, "hardy_rate_limiter_calls_total", name=name, outcome="permitted") == 2.0
    assert value(samples, "hardy_rate_limiter_calls_total", name=name, outcome="rejected") == 1.0
    assert value(samples, "hardy_rate_limiter_available_permits", name=name) == 0.0
    clock.advance(1.0)
    assert value(scrape(), "hardy_rate_limiter_available_permits", name=name) == 2.0
    # A wait on the real clock: 100 permits a second, a burst of one, so the second call waits ~10 ms.
    paced = hardy.RateLimiter(f"paced-{hardy.IMPLEMENTATION}", rate=100, burst=1, max_wait=5.0)
    paced.acquire()
    paced.acquire()
    samples = scrape()
    assert value(samples, "hardy_rate_limiter_calls_total", name=paced.name, outcome="permitted") == 2.0
    assert value(samples, "hardy_rate_limiter_waited_calls_total", name=paced.name) == 1.0
    assert value(samples, "hardy_rate_limiter_waited_calls_total", name=name) == 0.0
    assert scrape.types["hardy_rate_limiter_calls"] == "counter"
    assert scrape.types["hardy_rate_limiter_available_permits"] == "gauge"
