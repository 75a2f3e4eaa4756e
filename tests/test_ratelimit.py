"""Rate limiters on both cores: GCRA timing on a test clock, bursts, waiting, fairness, misuse."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

import hardy
from tests.conftest import FakeClock
from tests.threads import run_threads, switching_often


def test_error_is_a_hardy_error_and_pickles() -> None:
    exc = hardy.RateLimitExceededError("api", 0.25)
    assert isinstance(exc, hardy.HardyError)
    assert (exc.name, exc.retry_after) == ("api", 0.25)
    assert "api" in str(exc)
    assert "0.25s" in str(exc)
    again = pickle.loads(pickle.dumps(exc))
    assert (again.name, again.retry_after) == ("api", 0.25)


def test_burst_defaults_to_rate_then_one_per_interval(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=5, period=1.0, clock=clock)
    assert limiter.burst == 5
    assert [limiter.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.19)
    assert not limiter.try_acquire()
    clock.advance(0.01)  # one interval (0.2 s) after the burst: one permit
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    clock.advance(0.4)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]


def test_a_quiet_period_refills_the_burst_and_no_more(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=10, period=2.0, burst=3, clock=clock)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(3600.0)
    assert limiter.available == 3
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_steady_rate_over_a_long_run(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=100, period=1.0, burst=1, clock=clock)
    passed = 0
    for _ in range(10_000):  # 10 s in steps of 1 ms
        passed += limiter.try_acquire()
        clock.advance(0.001)
    assert passed == 1000


def test_rejection_tells_retry_after(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=2, period=1.0, burst=1, clock=clock)
    limiter.acquire()
    clock.advance(0.1)
    with pytest.raises(hardy.RateLimitExceededError) as info:
        limiter.acquire()
    assert info.value.name == "api"
    assert info.value.retry_after == pytest.approx(0.4)
    stats = limiter.get_stats()
    assert (stats["admitted"], stats["rejections"], stats["waited"]) == (1, 1, 0)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        hardy.RateLimiter("api", 0)
    with pytest.raises(ValueError, match="rate"):
        hardy.RateLimiter("api", float("inf"))
    with pytest.raises(TypeError, match="rate"):
        hardy.RateLimiter("api", "10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period"):
        hardy.RateLimiter("api", 10, period=0)
    with pytest.raises(ValueError, match="burst"):
        hardy.RateLimiter("api", 10, burst=0)
    with pytest.raises(TypeError, match="burst"):
        hardy.RateLimiter("api", 10, burst=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_wait"):
        hardy.RateLimiter("api", 10, max_wait=-1)
    with pytest.raises(ValueError, match="name"):
        hardy.RateLimiter("", 10)
    with pytest.raises(TypeError, match="clock"):
        hardy.RateLimiter("api", 10, clock=lambda: "now")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError):
        hardy.RateLimiter("api", 10, store=object())  # type: ignore[call-arg]
    assert hardy.RateLimiter("api", 0.5).burst == 1  # below one call per period: a burst of one


def test_waiting_sleeps_until_the_reserved_permit(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=1.0, clock=clock)
    limiter.acquire()
    done = threading.Event()

    def wait() -> None:
        limiter.acquire()
        done.set()

    thread = threading.Thread(target=wait)
    thread.start()
    assert not done.wait(0.05)  # the test clock has not moved: the permit is not due
    clock.advance(0.1)
    assert done.wait(5.0)
    thread.join(5.0)
    assert limiter.get_stats()["waited"] == 1


def test_waits_beyond_max_wait_are_rejected_at_once(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=1, period=1.0, burst=1, max_wait=0.25, clock=clock)
    limiter.acquire()
    # The next permit is 1 s away, beyond max_wait: refused without sleeping (the test clock never moves).
    with pytest.raises(hardy.RateLimitExceededError) as info:
        limiter.acquire()
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(0.8)
    thread = threading.Thread(target=limiter.acquire)  # 0.2 s away now: within max_wait, it waits
    thread.start()
    deadline = time.monotonic() + 5.0
    while limiter.get_stats()["waited"] != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    clock.advance(0.2)
    thread.join(5.0)
    assert not thread.is_alive()
    stats = limiter.get_stats()
    assert (stats["admitted"], stats["waited"], stats["rejections"]) == (2, 1, 1)


def test_waiters_are_served_first_come_first_served() -> None:
    clock = FakeClock()
    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=10.0, clock=clock)
    limiter.acquire()
    order: list[int] = []
    threads = []
    for i in range(5):
        thread = threading.Thread(target=lambda i=i: (limiter.acquire(), order.append(i)))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5.0
        while limiter.get_stats()["waited"] != i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert limiter.get_stats()["waited"] == i + 1
    # A newcomer cannot overtake the five reservations.
    assert not limiter.try_acquire()
    for expected in range(5):
        clock.advance(0.1)
        deadline = time.monotonic() + 5.0
        while len(order) < expected + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert order == list(range(expected + 1))
    for thread in threads:
        thread.join(5.0)


def test_threads_never_exceed_the_burst_at_once(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=50, period=1.0, clock=clock)
    passed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(100):
            ok = limiter.try_acquire()
            with lock:
                passed.append(ok)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert sum(passed) == 50
    assert limiter.get_stats()["rejections"] == 750


def test_decorated_calls_from_threads_switching_at_every_chance_get_exactly_the_burst() -> None:
    """The decorator's permit (on the monotonic clock: the twin takes it without the lock under the GIL)
    is never handed out twice however often threads switch."""
    limiter = hardy.RateLimiter("api", rate=50, period=3600.0)  # the burst, and nothing more for an hour
    passed: list[int] = []

    @limiter
    def work() -> int:
        return 1

    def run() -> None:
        for _ in range(200):
            with contextlib.suppress(hardy.RateLimitExceededError):
                passed.append(work())

    with switching_often():
        errors = run_threads(run, 8)
    assert errors == []
    assert len(passed) == 50
    stats = limiter.get_stats()
    assert stats["admitted"] == 50
    assert stats["rejections"] == 8 * 200 - 50


def test_tasks_wait_in_order_and_cancelled_waiter_gives_back(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=5.0, clock=clock)

    async def main() -> list[int]:
        order: list[int] = []
        await limiter.acquire_async()

        async def one(i: int) -> None:
            await limiter.acquire_async()
            order.append(i)

        tasks = [asyncio.create_task(one(i)) for i in range(3)]
        await asyncio.sleep(0.02)
        assert limiter.get_stats()["waited"] == 3
        tasks[2].cancel()  # the last reservation: its permit comes back
        with pytest.raises(asyncio.CancelledError):
            await tasks[2]
        assert limiter.get_stats()["waited"] == 2
        clock.advance(0.2)
        await asyncio.gather(*tasks[:2])
        clock.advance(0.1)  # the cancelled permit (due at +0.3) is free again
        assert limiter.try_acquire()
        return order

    assert asyncio.run(main()) == [0, 1]


def test_a_cancelled_waiter_in_the_middle_keeps_later_times(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=5.0, clock=clock)

    async def main() -> None:
        await limiter.acquire_async()
        tasks = [asyncio.create_task(limiter.acquire_async()) for _ in range(2)]
        await asyncio.sleep(0.02)
        tasks[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        clock.advance(0.2)
        await tasks[1]
        assert not limiter.try_acquire()  # the slot at +0.1 is lost, never doubled

    asyncio.run(main())


def test_interrupted_sync_waiter_gives_back(clock: FakeClock) -> None:
    class Stop(BaseException):
        pass

    state = {"stop": False}

    def stoppable() -> float:
        if state["stop"]:
            raise Stop  # as a KeyboardInterrupt in the waiter's sleep would
        return clock.now

    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=5.0, clock=stoppable)
    limiter.acquire()
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            limiter.acquire()
        except Stop as exc:
            raised.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 5.0
    while limiter.get_stats()["waited"] != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    state["stop"] = True
    thread.join(5.0)
    state["stop"] = False
    assert len(raised) == 1
    assert limiter.get_stats()["waited"] == 0
    assert limiter.get_stats()["admitted"] == 1
    clock.advance(0.1)
    assert limiter.try_acquire()  # the permit the waiter gave back


def test_trio_waits_through_hardy_aio(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=10, period=1.0, burst=1, max_wait=1.0)

    async def main() -> None:
        await limiter.acquire_async()
        async with limiter:
            pass

    trio.run(main)
    assert limiter.get_stats()["waited"] == 1


def test_decorator_sync_async_and_bare(clock: FakeClock) -> None:
    calls: list[int] = []

    @hardy.rate_limit("shared", rate=2)
    def first(x: int) -> int:
        calls.append(x)
        return x * 2

    @hardy.rate_limit("shared", rate=2)
    async def second(x: int) -> int:
        calls.append(x)
        return x * 3

    assert first.rate_limiter is second.rate_limiter is hardy.get_rate_limiter("shared")  # type: ignore[attr-defined]
    assert first(1) == 2
    assert asyncio.run(second(2)) == 6
    with pytest.raises(hardy.RateLimitExceededError):
        first(3)
    assert calls == [1, 2]

    @hardy.rate_limit
    def bare() -> str:
        return "ok"

    assert bare() == "ok"
    assert hardy.get_rate_limiter(f"{__name__}.test_decorator_sync_async_and_bare.<locals>.bare") is not None
    with pytest.raises(ValueError, match="other settings"):
        hardy.rate_limit("shared", rate=3)(len)
    with pytest.raises(ValueError, match="name"):
        hardy.rate_limit("", rate=3)
    with pytest.raises(TypeError, match="name"):
        hardy.rate_limit(5, rate=3)  # type: ignore[arg-type]


def test_limiter_as_decorator_and_context_manager(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=3, clock=clock)

    @limiter
    def f(x: int, *, y: int = 0) -> int:
        return x + y

    assert f(1, y=2) == 3
    with limiter:
        pass

    async def main() -> None:
        async with limiter:
            pass

    asyncio.run(main())
    with pytest.raises(hardy.RateLimitExceededError):
        f(1)
    with pytest.raises(hardy.RateLimitExceededError), limiter:
        pass


def test_user_errors_keep_type_and_the_permit_is_spent(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=2, clock=clock)

    @limiter
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert limiter.available == 1


def test_a_clock_that_fails_propagates() -> None:
    state = {"fail": False}

    def clock() -> float:
        if state["fail"]:
            raise OSError("clock")
        return 1.0

    limiter = hardy.RateLimiter("api", rate=2, clock=clock)
    f = limiter(len)
    state["fail"] = True
    with pytest.raises(OSError, match="clock"):
        f("ab")
    with pytest.raises(OSError, match="clock"):
        limiter.try_acquire()


def test_misuse(core: Any) -> None:
    limiter = hardy.RateLimiter("api", 2)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(limiter)
    with pytest.raises(RuntimeError):
        limiter.__init__("again", 3)  # type: ignore[misc]
    with pytest.raises(TypeError, match="RateLimiter"):
        core.guard_rate_limit(object(), len)
    with pytest.raises(TypeError, match="callable"):
        core.guard_rate_limit(limiter, 5)
    fresh = hardy.RateLimiter.__new__(hardy.RateLimiter)
    with pytest.raises(TypeError, match="__init__"):
        fresh.try_acquire()
    with pytest.raises(TypeError, match="__init__"):
        core.guard_rate_limit(fresh, len)
    limited: Callable[..., Any] = limiter(len)
    if core.IMPLEMENTATION == "c":
        with pytest.raises(TypeError):
            type(limited)()
    assert limited("ab") == 2
    assert "api" in repr(limiter)


def test_registry_and_health_check(clock: FakeClock) -> None:
    from hardy.health.defaults import rate_limiters_check

    limiter = hardy.rate_limiters.get_or_create("geo", rate=1)
    assert hardy.rate_limiters.get_or_create("geo", rate=1) is limiter
    assert rate_limiters_check()["status"] is hardy.HealthStatus.HEALTHY
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    result = rate_limiters_check()
    assert result["status"] is hardy.HealthStatus.DEGRADED
    assert result["rate_limiters"]["geo"] == {"rate": 1.0, "period": 1.0, "burst": 1, "waited": 0, "rejections": 1}
    assert "geo (1/1s, 1 rejected)" in result["message"]


def test_policy_arithmetic() -> None:
    from hardy.policies import ratelimit as policy

    state = policy.RateLimiterState()
    policy.ratelimit_configure(state, 0.5, 2)
    assert policy.ratelimit_take(state, 10.0, 0.0) == 0.0
    assert policy.ratelimit_take(state, 10.0, 0.0) == 0.0
    assert policy.ratelimit_take(state, 10.0, 0.0) == pytest.approx(-0.5)
    assert policy.ratelimit_take(state, 10.0, 1.0) == pytest.approx(0.5)
    assert state._tat == pytest.approx(11.5)
    assert policy.ratelimit_give_back(state, state._tat)
    assert state._tat == pytest.approx(11.0)
    assert policy.ratelimit_available(state, 12.0) == 2
    assert (state._admitted, state._waited, state._rejected) == (2, 0, 1)


def test_base_exceptions_where_user_code_runs(clock: FakeClock) -> None:
    class Stop(BaseException):
        pass

    state = {"stop": False}

    def clock_reading() -> float:
        if state["stop"]:
            raise Stop
        return clock.now

    limiter = hardy.RateLimiter("api", rate=2, clock=clock_reading)

    @limiter
    def stop_inside() -> None:
        raise Stop

    with pytest.raises(Stop):
        stop_inside()  # from the function: the permit is spent, the error unchanged
    assert limiter.get_stats()["admitted"] == 1
    state["stop"] = True
    with pytest.raises(Stop):
        stop_inside()  # from the clock, before any decision: nothing taken
    state["stop"] = False
    assert limiter.get_stats()["admitted"] == 1
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


def test_reentry_from_the_function_and_the_clock(clock: FakeClock) -> None:
    limiter = hardy.RateLimiter("api", rate=3, clock=clock)

    @limiter
    def nested(depth: int) -> int:
        return depth if depth == 0 else nested(depth - 1) + 1

    assert nested(2) == 2
    with pytest.raises(hardy.RateLimitExceededError):
        nested(0)
    seen: list[bool] = []
    other = hardy.RateLimiter("other", rate=10, clock=clock)  # the clock is also read twice at construction

    def nosy_clock() -> float:
        seen.append(other.try_acquire())  # a clock that itself takes a permit elsewhere
        return clock.now

    nosy = hardy.RateLimiter("nosy", rate=1, clock=nosy_clock)
    seen.clear()
    assert nosy.try_acquire()
    assert seen == [True]
    assert other.get_stats()["admitted"] == 3
