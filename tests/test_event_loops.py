"""Every async feature under every event loop: asyncio, uvloop, trio, anyio on asyncio and on trio.

The ``run`` fixture runs a test's scenario under each loop (and the autouse
``core`` fixture under each core). The scenarios use anyio's primitives
(sleep, events, task groups, cancel scopes), which work under all of them,
so one scenario checks the same behaviour everywhere: cancellation at every
await point, trial slots given back, timeouts racing completion.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
import trio

import hardy

from .conftest import FakeClock

T = TypeVar("T")
LOOPS = ("asyncio", "uvloop", "trio", "anyio-asyncio", "anyio-trio")
Runner = Callable[[Callable[[], Awaitable[Any]]], Any]


def _run_uvloop(make: Callable[[], Awaitable[T]]) -> T:
    import uvloop

    async def main() -> T:
        return await make()

    return uvloop.run(main())


def _run_asyncio(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Runner:
    """``run(scenario)``: await ``scenario()`` under this test's loop and return its result."""
    name = request.param
    if name == "uvloop" and sys.platform == "win32":  # pragma: no cover - uvloop has no Windows build
        pytest.skip("uvloop does not run on Windows")
    if name == "asyncio":
        return _run_asyncio
    if name == "uvloop":
        return _run_uvloop
    if name == "trio":
        return lambda make: trio.run(make)
    backend = name.split("-", 1)[1]
    return lambda make: anyio.run(make, backend=backend)


class Boom(Exception):
    pass


def cancelled_type() -> type[BaseException]:
    return anyio.get_cancelled_exc_class()


# -- detection ----------------------------------------------------------------------------


def test_the_running_library_is_detected(run: Runner, request: pytest.FixtureRequest) -> None:
    from hardy import _aio

    async def scenario() -> str:
        return _aio.library()

    expected = "trio" if "trio" in request.node.callspec.params["run"] else "asyncio"
    assert run(scenario) == expected


def test_outside_any_loop_the_error_names_the_libraries() -> None:
    @hardy.timeout(1.0)
    async def work() -> int:
        return 1

    coroutine = work()
    with pytest.raises(RuntimeError, match="no running event loop: hardy's async features need asyncio, trio or anyio"):
        coroutine.send(None)
    coroutine.close()


# -- circuit breaker ----------------------------------------------------------------------


def test_breaker_counts_successes_and_failures_and_rejects(run: Runner, clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("svc", failure_threshold=2, reset_timeout=10.0, clock=clock)

    @breaker
    async def work(fail: bool) -> str:
        await anyio.sleep(0)
        if fail:
            raise Boom("down")
        return "ok"

    async def scenario() -> None:
        assert await work(False) == "ok"
        for _ in range(2):
            with pytest.raises(Boom):
                await work(True)
        with pytest.raises(hardy.CircuitOpenError):
            await work(False)

    run(scenario)
    stats = breaker.get_stats()
    assert (stats["successes"], stats["failures"], stats["state"]) == (1, 2, "open")


def test_breaker_fallbacks_sync_and_async_answer_a_rejection(run: Runner, clock: FakeClock) -> None:
    breaker = hardy.CircuitBreaker("svc", failure_threshold=1, reset_timeout=10.0, clock=clock)
    breaker.record_failure(Boom("trip"))

    async def spare(x: int) -> str:
        await anyio.sleep(0)
        return f"async spare {x}"

    async def work(x: int) -> str:
        return "primary"

    async def scenario() -> tuple[str, str]:
        return (
            await hardy._core.protect(breaker, work, spare)(1),
            await hardy._core.protect(breaker, work, lambda x: f"sync spare {x}")(2),
        )

    assert run(scenario) == ("async spare 1", "sync spare 2")


@pytest.mark.parametrize("point", ["first await", "second await", "after work"])
def test_cancelled_trial_gives_its_slot_back_at_every_await_point(run: Runner, clock: FakeClock, point: str) -> None:
    breaker = hardy.CircuitBreaker("svc", failure_threshold=1, reset_timeout=10.0, half_open_max_calls=1, clock=clock)
    breaker.record_failure(Boom("trip"))
    clock.advance(10.0)
    calls_before = breaker.get_stats()["calls"]
    reached: list[str] = []

    async def scenario() -> None:
        in_middle = anyio.Event()
        cancelled = anyio.Event()

        @breaker
        async def trial() -> None:
            reached.append("start")
            await anyio.sleep(10 if point == "first await" else 0)
            reached.append("middle")
            in_middle.set()
            if point == "second await":
                await anyio.sleep(10)
            else:
                with anyio.CancelScope(shield=True):
                    await cancelled.wait()  # the cancellation lands at the next await
                await anyio.sleep(0)

        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(trial)
                if point == "first await":
                    await anyio.sleep(0.01)
                else:
                    await in_middle.wait()
                assert breaker.get_stats()["half_open_calls"] == 1
                scope.cancel()
                cancelled.set()
        assert scope.cancelled_caught

    run(scenario)
    assert reached == (["start"] if point == "first await" else ["start", "middle"])
    stats = breaker.get_stats()
    assert stats["half_open_calls"] == 0  # given back
    assert stats["calls"] == calls_before  # a cancellation is not an outcome
    assert stats["state"] == "half_open"


# -- retry --------------------------------------------------------------------------------


def test_retry_sleeps_between_attempts(run: Runner) -> None:
    attempts: list[float] = []

    @hardy.retry(max_attempts=3, initial_delay=0.005, jitter=False, retryable_exceptions=Boom)
    async def flaky() -> str:
        attempts.append(0.0)
        await anyio.sleep(0)
        if len(attempts) < 3:
            raise Boom("again")
        return "ok"

    async def scenario() -> tuple[str, float]:
        started = anyio.current_time()
        value = await flaky()
        return value, anyio.current_time() - started

    value, elapsed = run(scenario)
    assert value == "ok"
    assert len(attempts) == 3
    # Both sleeps happened on the loop's own clock (a lower bound, not a speed
    # check; uvloop rounds its timers to the millisecond, so one may end early).
    assert elapsed >= 0.005 + 0.01 - 0.002


def test_retry_async_on_retry_hook_is_awaited(run: Runner) -> None:
    seen: list[int] = []

    async def hook(exc: BaseException | None, attempt: int) -> None:
        await anyio.sleep(0)
        seen.append(attempt)

    @hardy.retry(max_attempts=3, initial_delay=0.0, max_delay=0.0, on_retry=hook)
    async def always() -> None:
        raise Boom("down")

    async def scenario() -> None:
        with pytest.raises(Boom):
            await always()

    run(scenario)
    assert seen == [1, 2]


@pytest.mark.parametrize("point", ["in the attempt", "in the sleep"])
def test_cancelled_retry_is_not_retried(run: Runner, point: str) -> None:
    attempts = 0

    @hardy.retry(max_attempts=5, initial_delay=10.0, jitter=False)
    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if point == "in the sleep":
            raise Boom("fail, then sleep 10 s")
        await anyio.sleep(10)

    async def scenario() -> None:
        with anyio.move_on_after(0.02) as scope:
            await flaky()
        assert scope.cancelled_caught

    run(scenario)
    assert attempts == 1


def test_instant_retries_record_under_every_loop(run: Runner) -> None:
    @hardy.retry(max_attempts=3, initial_delay=5.0, jitter=False)
    async def always() -> None:
        raise Boom("down")

    async def scenario() -> None:
        with pytest.raises(Boom):
            await always()

    with hardy.testing.instant_retries() as sleeps:
        run(scenario)
    assert sleeps.delays == [5.0, 10.0]


# -- fallback -----------------------------------------------------------------------------


def test_fallback_chain_under_every_loop(run: Runner) -> None:
    async def primary(x: int) -> str:
        await anyio.sleep(0)
        raise Boom("primary down")

    async def second(x: int) -> str:
        await anyio.sleep(0)
        return f"second {x}"

    ok = hardy.with_fallback(second, [primary])
    falling = hardy.with_fallback(primary, [second])
    all_down = hardy.with_fallback(primary, [primary], default="default")

    async def scenario() -> tuple[str, str, str]:
        return await ok(1), await falling(2), await all_down(3)

    assert run(scenario) == ("second 1", "second 2", "default")


def test_bulkhead_admits_waits_and_hands_slots_over_under_every_loop(run: Runner) -> None:
    bulkhead = hardy.Bulkhead("pool", max_concurrent=1, max_wait=5.0)
    refusing = hardy.Bulkhead("full", max_concurrent=1)
    inside: list[int] = []
    most: list[int] = []

    @hardy.bulkhead(bulkhead)
    async def work(i: int) -> int:
        inside.append(i)
        most.append(len(inside))
        await anyio.sleep(0.01)
        inside.remove(i)
        return i

    async def scenario() -> tuple[list[int], str]:
        results: list[int] = []

        async def one(i: int) -> None:
            results.append(await work(i))

        async with anyio.create_task_group() as group:
            for i in range(4):
                group.start_soon(one, i)  # three of them wait for the slot
        async with refusing:
            try:
                async with refusing:
                    pass
            except hardy.BulkheadFullError:
                return sorted(results), "refused"
        return sorted(results), "admitted"

    assert run(scenario) == ([0, 1, 2, 3], "refused")
    assert max(most) == 1
    assert bulkhead.get_stats()["waited"] == 3


def test_fallback_never_answers_a_cancellation(run: Runner) -> None:
    answered: list[str] = []

    async def primary() -> str:
        await anyio.sleep(10)
        return "primary"

    def spare() -> str:
        answered.append("spare")
        return "spare"

    chain = hardy.with_fallback(primary, [spare])

    async def scenario() -> None:
        with anyio.move_on_after(0.02) as scope:
            await chain()
        assert scope.cancelled_caught

    run(scenario)
    assert answered == []


# -- timeout ------------------------------------------------------------------------------


def test_timeout_fires_and_cancels_the_work(run: Runner) -> None:
    cancelled: list[bool] = []

    @hardy.timeout(0.02)
    async def slow() -> str:
        try:
            await anyio.sleep(10)
        except cancelled_type():
            cancelled.append(True)
            raise
        return "late"

    async def scenario() -> None:
        with pytest.raises(hardy.TimeoutError) as info:
            await slow()
        assert info.value.operation.endswith("slow")
        await anyio.sleep(0)  # the task is not left cancelled

    run(scenario)
    assert cancelled == [True]


def test_timeout_that_does_not_fire_returns_and_leaves_nothing_behind(run: Runner) -> None:
    # Far enough for a collection of the test session's heap to fit in one call.
    @hardy.timeout(0.5)
    async def quick(x: int) -> int:
        await anyio.sleep(0)
        return x * 2

    async def scenario() -> list[int]:
        values = [await quick(i) for i in range(50)]
        await anyio.sleep(0.55)  # past every deadline: none may fire into this task
        return values

    assert run(scenario) == [i * 2 for i in range(50)]


def test_timeout_fallbacks_and_with_timeout(run: Runner) -> None:
    async def spare(x: int) -> str:
        await anyio.sleep(0)
        return f"async {x}"

    @hardy.timeout(0.02, fallback=spare)
    async def slow(x: int) -> str:
        await anyio.sleep(10)
        return "late"

    async def value() -> str:
        await anyio.sleep(0)
        return "value"

    async def scenario() -> None:
        assert await slow(1) == "async 1"
        assert await hardy.with_timeout(value(), 1.0) == "value"
        assert await hardy.with_timeout(anyio.sleep(10), 0.02, fallback_value=None) is None
        with pytest.raises(hardy.TimeoutError):
            await hardy.with_timeout(anyio.sleep(10), 0.02)

    run(scenario)


def test_timeout_own_timeout_error_passes_through(run: Runner) -> None:
    error = TimeoutError("the function's own")

    @hardy.timeout(5.0)
    async def raises() -> None:
        await anyio.sleep(0)
        raise error

    async def scenario() -> None:
        with pytest.raises(TimeoutError) as info:
            await raises()
        assert info.value is error

    run(scenario)


def test_timeout_external_cancellation_stays_cancellation(run: Runner) -> None:
    @hardy.timeout(5.0)
    async def slow() -> None:
        await anyio.sleep(10)

    async def scenario() -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                await anyio.sleep(0.01)
                scope.cancel()
        assert scope.cancelled_caught  # a cancellation, caught by its own scope: no TimeoutError

    run(scenario)


def test_timeout_inside_an_expiring_cancel_scope_stays_cancellation(run: Runner) -> None:
    @hardy.timeout(5.0)
    async def slow() -> None:
        await anyio.sleep(10)

    async def scenario() -> None:
        with anyio.move_on_after(0.02) as scope:
            await slow()
        assert scope.cancelled_caught

    run(scenario)


@pytest.mark.parametrize("tight", ["outer", "inner"])
def test_nested_deadlines_honour_the_tightest(run: Runner, tight: str) -> None:
    @hardy.timeout(0.02 if tight == "inner" else 5.0, error_message="inner")
    async def inner() -> None:
        await anyio.sleep(10)

    @hardy.timeout(0.02 if tight == "outer" else 5.0, error_message="outer")
    async def outer() -> None:
        await inner()

    async def scenario() -> str:
        try:
            await outer()
        except hardy.TimeoutError as error:
            return error.operation
        return "no timeout"

    assert run(scenario) == tight


def test_timeouts_racing_completion(run: Runner) -> None:
    # Work that takes about as long as its deadline: each call either returns
    # its value or raises hardy.TimeoutError, never a stray cancellation, and
    # the task goes on unharmed after each.
    @hardy.timeout(0.002)
    async def racing(delay: float) -> float:
        await anyio.sleep(delay)
        return delay

    async def scenario() -> tuple[int, int]:
        answered = timed_out = 0
        for i in range(60):
            try:
                await racing(0.0015 + (i % 7) * 0.0002)
                answered += 1
            except hardy.TimeoutError:
                timed_out += 1
            await anyio.sleep(0)
        return answered, timed_out

    answered, timed_out = run(scenario)
    assert answered + timed_out == 60


def test_work_that_swallows_the_deadline_returns_its_value(run: Runner) -> None:
    @hardy.timeout(0.01)
    async def stubborn() -> str:
        try:
            await anyio.sleep(10)
        except cancelled_type():
            return "swallowed"
        return "late"

    async def scenario() -> str:
        value = await stubborn()
        await anyio.sleep(0.001)  # the task is not left cancelled
        return value

    assert run(scenario) == "swallowed"


def test_concurrent_timeouts_each_fire_only_their_own_task(run: Runner) -> None:
    results: dict[int, str] = {}

    async def job(index: int) -> None:
        @hardy.timeout(0.03 if index % 2 else 5.0)
        async def work() -> str:
            await anyio.sleep(0.01 if index % 2 == 0 else 10)
            return "done"

        try:
            results[index] = await work()
        except hardy.TimeoutError:
            results[index] = "timed out"

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(job, index)

    run(scenario)
    assert results == {i: ("timed out" if i % 2 else "done") for i in range(10)}


# -- four decorators stacked --------------------------------------------------------------


def test_four_async_decorators_stacked(run: Runner) -> None:
    calls = 0

    @hardy.timeout(1.0)
    @hardy.fallback(lambda: "fallback")
    @hardy.retry(max_attempts=3, initial_delay=0.001, jitter=False)
    @hardy.circuit_breaker("stacked", failure_threshold=10)
    async def work() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0)
        if calls < 3:
            raise Boom("again")
        return "ok"

    async def scenario() -> str:
        return await work()

    assert run(scenario) == "ok"
    assert calls == 3


# -- health checks ------------------------------------------------------------------------


def make_health() -> hardy.HealthCheck:
    health = hardy.HealthCheck(version="1")

    @health.register("async-ok", critical=True)
    async def async_ok() -> bool:
        await anyio.sleep(0)
        return True

    @health.register("async-hangs", timeout=0.02)
    async def async_hangs() -> bool:
        await anyio.sleep(10)
        return True

    health.register("sync-ok")(lambda: True)
    health.register("sync-down")(lambda: False)
    return health


def test_health_checks_and_their_timeouts(run: Runner) -> None:
    health = make_health()

    async def scenario() -> tuple[Any, Any]:
        return await health.run_all(), await health.run_critical()

    everything, critical = run(scenario)
    by_name = {result.name: result for result in everything.checks}
    assert by_name["async-ok"].status is hardy.HealthStatus.HEALTHY
    assert by_name["async-hangs"].status is hardy.HealthStatus.UNHEALTHY
    assert by_name["async-hangs"].message == "timed out after 0.02s"
    assert by_name["sync-ok"].status is hardy.HealthStatus.HEALTHY
    assert by_name["sync-down"].status is hardy.HealthStatus.UNHEALTHY
    assert everything.status is hardy.HealthStatus.DEGRADED
    assert [result.name for result in critical.checks] == ["async-ok"]


def test_concurrent_probes_share_one_run_and_a_leaving_probe_does_not_cancel_it(run: Runner) -> None:
    health = hardy.HealthCheck()
    started: list[int] = []
    gate = anyio.Event

    async def scenario() -> list[Any]:
        release = gate()

        @health.register("slow", timeout=5.0)
        async def slow() -> bool:
            started.append(1)
            await release.wait()
            return True

        results: list[Any] = []

        async def probe() -> None:
            results.append(await health.run_check("slow"))

        async with anyio.create_task_group() as group:
            with anyio.move_on_after(0.01):
                await health.run_check("slow")  # gives up: the run goes on for the others
            group.start_soon(probe)
            group.start_soon(probe)
            await anyio.sleep(0.01)
            release.set()
        return results

    results = run(scenario)
    assert started == [1]
    assert [result.status for result in results] == [hardy.HealthStatus.HEALTHY] * 2


def test_asgi_health_app(run: Runner) -> None:
    app = hardy.health.asgi_app(make_health())

    async def call(path: str) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request"}

        async def send(message: dict[str, Any]) -> None:
            await anyio.sleep(0)
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"accept", b"application/json")]}
        await app(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    async def scenario() -> list[tuple[int, bytes]]:
        return [await call("/"), await call("/ready"), await call("/live")]

    (all_code, all_body), (ready_code, _), (live_code, _) = run(scenario)
    assert all_code == 200  # degraded, not unhealthy: no critical check failed
    assert b"async-hangs" in all_body
    assert (ready_code, live_code) == (200, 200)
