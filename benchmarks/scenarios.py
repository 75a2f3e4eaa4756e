"""Every timed benchmark scenario, defined once.

A scenario is a group of cases measured side by side: the floors (a bare call,
``functools.partial``, a minimal hand-written wrapper, ...), hardy compiled
(``hardy-c``), the pure-Python twin (``hardy-py``) and each peer that offers
the scenario (``peers.py``). ``test_scenarios_bench.py`` runs them under
pytest-benchmark; ``report.py`` runs them interleaved and writes the report.

A case builds a *runner*: a zero-argument callable that makes ``calls`` calls
of the case through an unrolled loop (see ``_harness.py``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hardy

from . import _harness, peers

Runner = Callable[[], None]
# A case factory gets the number of calls per runner and an event loop (for
# async cases) and returns the runner.
Factory = Callable[[int, asyncio.AbstractEventLoop], Runner]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "floor", "hardy" or "peer"
    factory: Factory


@dataclass(frozen=True)
class Scenario:
    group: str
    title: str
    floor: str  # the case the "ratio to bare" column divides by
    cases: tuple[Case, ...]


# -- the functions being protected --------------------------------------------------------


def work(x: int) -> int:
    return x


async def async_work(x: int) -> int:
    return x


def second(x: int) -> int:
    return x + 1


async def async_second(x: int) -> int:
    return x + 1


def down(x: int) -> int:
    raise ValueError("x")


async def async_down(x: int) -> int:
    raise ValueError("x")


def three_failures_then_success() -> Callable[[int], int]:
    calls = 0

    def func(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls % 4:
            raise ValueError("x")
        return x

    return func


def async_three_failures_then_success() -> Callable[[int], Any]:
    calls = 0

    async def func(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls % 4:
            raise ValueError("x")
        return x

    return func


# -- floors -------------------------------------------------------------------------------


class MinimalWrapper:
    """The floor for the twin's breaker: a class wrapper that counts failures."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.failures = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.func(*args, **kwargs)
        except Exception:
            self.failures += 1
            raise


def mini_retry(func: Callable[..., Any], attempts: int = 3) -> Callable[..., Any]:
    """The floor for the twin's retry: a minimal hand-written retry loop."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(attempts):
            try:
                return func(*args, **kwargs)
            except Exception:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    return wrapper


def three_raises_floor(x: int) -> int:
    """Three raise-and-catch of a fresh ValueError, in one frame."""
    for _ in range(3):
        try:
            raise ValueError("x")
        except ValueError:
            pass
    return x


# -- building cases -----------------------------------------------------------------------


def sync(name: str, kind: str, build: Callable[[], Callable[[int], Any]], argument: int = 1) -> Case:
    return Case(name, kind, lambda calls, loop: _harness.unrolled(build(), argument, calls=calls))


def raising(name: str, kind: str, build: Callable[[], Callable[[int], Any]]) -> Case:
    return Case(name, kind, lambda calls, loop: _harness.unrolled_catching(build(), Exception, calls=calls))


def awaited(name: str, kind: str, build: Callable[[], Callable[[int], Any]]) -> Case:
    return Case(name, kind, lambda calls, loop: _harness.unrolled_await(build(), loop, calls=calls))


def awaited_raising(name: str, kind: str, build: Callable[[], Callable[[int], Any]]) -> Case:
    return Case(name, kind, lambda calls, loop: _harness.unrolled_await_catching(build(), loop, calls=calls))


def core(name: str) -> Any:
    return _harness.load_core(name)


def hardy_cases(make: Callable[[Any], Callable[[int], Any]], wrap: Callable[..., Case] = sync) -> tuple[Case, ...]:
    return tuple(wrap(f"hardy-{name}", "hardy", functools.partial(make, core(name))) for name in ("c", "py"))


def peer_cases(
    built: Callable[[], dict[str, Callable[[int], Any]]], wrap: Callable[..., Case] = sync
) -> tuple[Case, ...]:
    """One case per peer; each runner rebuilds the peer's callable (fresh state)."""
    names = sorted(built())
    return tuple(wrap(name, "peer", functools.partial(_peer, built, name)) for name in names)


def _peer(built: Callable[[], dict[str, Callable[[int], Any]]], name: str) -> Callable[[int], Any]:
    return built()[name]


def _breaker(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.CircuitBreaker("bench")(func)  # type: ignore[no-any-return]


def _open_breaker(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    breaker = core_module.CircuitBreaker("bench-open", failure_threshold=1, reset_timeout=3600)
    breaker.record_failure(ValueError("trip"))
    return breaker(func)  # type: ignore[no-any-return]


def _keyed_breaker(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    """``circuit_breaker(key=...)``'s dispatch on ``core_module``, one key: a hit in the LRU per call."""
    group = hardy._keyed.BreakerGroup("bench-keyed", 1024, core_module.CircuitBreaker, lambda breaker: None)
    keyed = hardy._keyed.protect_keyed(group, func, _key_of, None, core_module.protect)
    keyed(1)  # the key's breaker exists: the benchmark measures the hit
    return keyed  # type: ignore[no-any-return]


def _key_of(x: int) -> int:
    return x


def _retrying(core_module: Any, func: Callable[[int], Any], **settings: Any) -> Callable[[int], Any]:
    wrapper = core_module.retrying(core_module.RetryConfig(**settings), func)
    hardy._retry_events.declare(wrapper)  # as hardy.retry does: its metrics read its counters
    return wrapper  # type: ignore[no-any-return]


ZERO_WAIT = {"max_attempts": 4, "initial_delay": 0.0, "max_delay": 0.0}


def _chain(core_module: Any, *funcs: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.chain("bench", funcs, hardy._sentinel.NO_DEFAULT, (Exception,), False)  # type: ignore[no-any-return]


def _bulkhead(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.guard_bulkhead(core_module.Bulkhead("bench", 10), func)  # type: ignore[no-any-return]


def _rate_limited(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.guard_rate_limit(core_module.RateLimiter("bench", 10**9), func)  # type: ignore[no-any-return]


_SHARED_SERVER: list[Any] = []  # the redis-server of the Redis-shared limiter's cases, started once
_SHARED_STORE: list[Any] = []  # and their one RedisStore


def _shared_store() -> Any:
    """A RedisStore on ``.ci/run``'s redis-server (``HARDY_TEST_REDIS_PORT``), or on one started here."""
    import atexit
    import os
    import uuid

    import redis
    from tests.redis_server import RedisServer

    if not _SHARED_SERVER:
        port = os.environ.get("HARDY_TEST_REDIS_PORT")
        if port:
            _SHARED_SERVER.append(RedisServer(int(port)))
        else:
            _SHARED_SERVER.append(RedisServer().start())
            atexit.register(_SHARED_SERVER[0].stop)
    if not _SHARED_STORE:
        # One store for every case: each store keeps a thread blocked in a
        # read, whose buffer the memory measurements after the scenarios see.
        client = redis.Redis(host="127.0.0.1", port=_SHARED_SERVER[0].port)
        _SHARED_STORE.append(hardy.RedisStore(client, prefix=f"bench{uuid.uuid4().hex[:6]}:"))
        atexit.register(_SHARED_STORE[0].close)  # before the server stops (atexit runs last in, first out)
    return _SHARED_STORE[0]


def _rate_limited_shared(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    # Leases of 20 ms of the rate (2 * 10**7 permits): one round trip per lease, or per half second.
    limiter = core_module.RateLimiter("bench", 10**9, store=_shared_store())
    limiter.acquire()  # the first lease, before the timing (its round trip would make calibration pick tiny samples)
    return core_module.guard_rate_limit(limiter, func)  # type: ignore[no-any-return]


def _timed(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.timed(func, 10.0, "bench")  # type: ignore[no-any-return]


def _timed_async(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.timed_async(func, 10.0, "bench", None, False)  # type: ignore[no-any-return]


def _stacked(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    """timeout(fallback(retry(breaker(func)))), each layer from ``core_module``."""
    protected = _breaker(core_module, func)
    retried = _retrying(core_module, protected)
    chained = _chain(core_module, retried, async_second)
    return _timed_async(core_module, chained)


# -- the scenarios ------------------------------------------------------------------------

BARE = sync("bare", "floor", lambda: work)
BARE_AWAIT = awaited("bare-await", "floor", lambda: async_work)
PARTIAL = sync("partial", "floor", lambda: functools.partial(work))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "breaker-closed-success",
        "Circuit breaker, closed, call succeeds",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("minimal-wrapper", "floor", lambda: MinimalWrapper(work)),
            *hardy_cases(lambda c: _breaker(c, work)),
            *peer_cases(lambda: peers.breaker_closed(work)),
        ),
    ),
    Scenario(
        "breaker-open-rejection",
        "Circuit breaker, open, call rejected (raise and catch)",
        "raise-ValueError-same-frame",
        (
            Case(
                "raise-ValueError-same-frame",
                "floor",
                lambda calls, loop: _harness.unrolled_raise_same_frame(calls),
            ),
            raising("raise-ValueError", "floor", lambda: down),
            *hardy_cases(lambda c: _open_breaker(c, work), raising),
            *peer_cases(lambda: peers.breaker_open(work), raising),
        ),
    ),
    Scenario(
        "breaker-async-closed-success",
        "Circuit breaker, async, closed, call succeeds",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _breaker(c, async_work), awaited),
            *peer_cases(lambda: peers.breaker_closed_async(async_work), awaited),
        ),
    ),
    Scenario(
        "breaker-async-open-rejection",
        "Circuit breaker, async, open, call rejected (raise and catch)",
        "await-raise-ValueError",
        (
            awaited_raising("await-raise-ValueError", "floor", lambda: async_down),
            *hardy_cases(lambda c: _open_breaker(c, async_work), awaited_raising),
            *peer_cases(lambda: peers.breaker_open_async(async_work), awaited_raising),
        ),
    ),
    Scenario(
        "retry-first-attempt-success",
        "Retry, success on the first attempt",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("mini-retry", "floor", lambda: mini_retry(work)),
            *hardy_cases(lambda c: _retrying(c, work)),
            *peer_cases(lambda: peers.retry_first_success(work)),
        ),
    ),
    Scenario(
        "retry-three-failures-zero-delay",
        "Retry, three failures then success, zero delay",
        "floor-3-raises",
        (
            sync("floor-3-raises", "floor", lambda: three_raises_floor),
            sync("mini-retry", "floor", lambda: mini_retry(three_failures_then_success(), attempts=4)),
            *hardy_cases(lambda c: _retrying(c, three_failures_then_success(), **ZERO_WAIT)),
            *peer_cases(lambda: peers.retry_three_failures(three_failures_then_success)),
        ),
    ),
    Scenario(
        "retry-async-first-attempt-success",
        "Retry, async, success on the first attempt",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _retrying(c, async_work), awaited),
            *peer_cases(lambda: peers.retry_first_success_async(async_work), awaited),
        ),
    ),
    Scenario(
        "retry-async-three-failures-zero-delay",
        "Retry, async, three failures then success, zero delay",
        "hardy-c",
        (
            *hardy_cases(lambda c: _retrying(c, async_three_failures_then_success(), **ZERO_WAIT), awaited),
            *peer_cases(lambda: peers.retry_three_failures_async(async_three_failures_then_success), awaited),
        ),
    ),
    Scenario(
        "retry-get-delay",
        "Retry delay calculation (RetryConfig.get_delay(3), full jitter)",
        "float-floor",
        (
            sync("float-floor", "floor", lambda: float, argument=3),
            *hardy_cases(lambda c: c.RetryConfig().get_delay, functools.partial(sync, argument=3)),
        ),
    ),
    Scenario(
        "fallback-primary-success",
        "Fallback chain, the primary succeeds",
        "bare",
        (
            BARE,
            PARTIAL,
            *hardy_cases(lambda c: _chain(c, work, second)),
            *peer_cases(lambda: peers.fallback_primary_success(work, second)),
        ),
    ),
    Scenario(
        "fallback-to-second",
        "Fallback chain, the primary fails and the second answers",
        "hardy-c",
        (
            *hardy_cases(lambda c: _chain(c, down, second)),
            *peer_cases(lambda: peers.fallback_to_second(down, second)),
        ),
    ),
    Scenario(
        "fallback-async-primary-success",
        "Fallback chain, async, the primary succeeds",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _chain(c, async_work, async_second), awaited),
            *peer_cases(lambda: peers.fallback_primary_success_async(async_work, async_second), awaited),
        ),
    ),
    Scenario(
        "fallback-async-to-second",
        "Fallback chain, async, the primary fails and the second answers",
        "hardy-c",
        (
            *hardy_cases(lambda c: _chain(c, async_down, async_second), awaited),
            *peer_cases(lambda: peers.fallback_to_second_async(async_down, async_second), awaited),
        ),
    ),
    Scenario(
        "timeout-sync-not-firing",
        "Timeout, sync, the call finishes in time",
        "bare",
        (
            BARE,
            *hardy_cases(lambda c: _timed(c, work)),
            *peer_cases(lambda: peers.timeout_not_firing(work)),
        ),
    ),
    Scenario(
        "timeout-async-not-firing",
        "Timeout, async, the call finishes in time",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _timed_async(c, async_work), awaited),
            *peer_cases(lambda: peers.timeout_not_firing_async(async_work), awaited),
        ),
    ),
    Scenario(
        "bulkhead-uncontended",
        "Bulkhead, uncontended (10 slots, one call at a time): enter, call, leave",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("minimal-wrapper", "floor", lambda: MinimalWrapper(work)),
            *hardy_cases(lambda c: _bulkhead(c, work)),
            *peer_cases(lambda: peers.bulkhead_uncontended(work)),
        ),
    ),
    Scenario(
        "bulkhead-async-uncontended",
        "Bulkhead, async, uncontended (10 slots): enter, await, leave",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _bulkhead(c, async_work), awaited),
            *peer_cases(lambda: peers.bulkhead_uncontended_async(async_work), awaited),
        ),
    ),
    Scenario(
        "ratelimit-uncontended",
        "Rate limiter, uncontended (10**9 permits per second, never refused): take a permit, call",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("minimal-wrapper", "floor", lambda: MinimalWrapper(work)),
            *hardy_cases(lambda c: _rate_limited(c, work)),
            *peer_cases(lambda: peers.rate_limit_uncontended(work)),
        ),
    ),
    Scenario(
        "ratelimit-shared-uncontended",
        "Rate limiter shared through Redis (10**9 permits per second): take a permit from the lease, call",
        "bare",
        (
            BARE,
            *hardy_cases(lambda c: _rate_limited(c, work)),
            sync("hardy-c-redis", "hardy", lambda: _rate_limited_shared(core("c"), work)),
            sync("hardy-py-redis", "hardy", lambda: _rate_limited_shared(core("py"), work)),
        ),
    ),
    Scenario(
        "ratelimit-async-uncontended",
        "Rate limiter, async, uncontended (10**9 permits per second): take a permit, await",
        "bare-await",
        (
            BARE_AWAIT,
            *hardy_cases(lambda c: _rate_limited(c, async_work), awaited),
            *peer_cases(lambda: peers.rate_limit_uncontended_async(async_work), awaited),
        ),
    ),
)

# Four async decorators stacked against the sum of their separate overheads
# (benchmarks/targets.py: the stacked overhead over the bare await is at most
# the sum of the four separate ones), every case in one group so the report
# measures them in the same rounds.
SCENARIOS += (
    Scenario(
        "async-four-stacked",
        "Async, timeout + fallback + retry + breaker stacked, vs each alone",
        "bare-await",
        (
            BARE_AWAIT,
            *(
                awaited(f"{layer}-{name}", "hardy", functools.partial(make, core(name), async_work))
                for name in ("c", "py")
                for layer, make in (
                    ("timeout", _timed_async),
                    ("fallback", lambda c, f: _chain(c, f, async_second)),
                    ("retry", _retrying),
                    ("breaker", _breaker),
                    ("stacked", _stacked),
                )
            ),
        ),
    ),
)

# One breaker per key (circuit_breaker(key=...)): the keyed dispatch is plain
# Python on both cores; no target is set (issue 17), the report shows the ratio.
SCENARIOS += (
    Scenario(
        "breaker-keyed-closed-success",
        "Circuit breaker per key (key=), closed, call succeeds: the key function, a dict hit, the breaker",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("minimal-wrapper", "floor", lambda: MinimalWrapper(work)),
            sync("plain-breaker-c", "hardy", lambda: _breaker(core("c"), work)),
            *hardy_cases(lambda c: _keyed_breaker(c, work)),
        ),
    ),
)


def _budgeted(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    """A retry with a RetryBudget (Finagle's defaults), its state made by ``core_module``."""
    import time

    settings = hardy._validate.retry_budget_settings(0.2, 10, 10.0, time.monotonic)
    budget: Any = object.__new__(hardy.RetryBudget)
    budget._settings = settings
    budget._ledger = core_module.RetryConfig._budget_ledger(settings)
    return _retrying(core_module, func, budget=budget)


# A retry budget costs one deposit per call (an add, no clock): beside the same retry without one.
SCENARIOS += (
    Scenario(
        "retry-budget-first-attempt-success",
        "Retry with a RetryBudget, success on the first attempt, vs without",
        "bare",
        (
            BARE,
            PARTIAL,
            *(
                sync(f"hardy-{name}-no-budget", "hardy", functools.partial(_retrying, core(name), work))
                for name in ("c", "py")
            ),
            *hardy_cases(lambda c: _budgeted(c, work)),
        ),
    ),
)


# Issue 17: rate-based windows. The compiled and twin cases with a
# CountWindow(100) keep the names hardy-c / hardy-py so that their targets read
# as the plain breaker's do; beside them the same window with slow-call
# tracking, and the same window over a function that reads time.monotonic()
# once more, which is the yardstick of "at most one clock read more".
def work_and_clock(x: int) -> int:
    time.monotonic()
    return x


def _windowed(core_module: Any, func: Callable[[int], Any], **window: Any) -> Callable[[int], Any]:
    settings = {"size": 100, **window}
    return core_module.CircuitBreaker("bench-window", window=hardy.CountWindow(**settings))(func)  # type: ignore[no-any-return]


def _time_windowed(core_module: Any, func: Callable[[int], Any]) -> Callable[[int], Any]:
    return core_module.CircuitBreaker("bench-window", window=hardy.TimeWindow(seconds=60))(func)  # type: ignore[no-any-return]


SCENARIOS += (
    Scenario(
        "breaker-window-closed-success",
        "Circuit breaker with a window, closed, call succeeds (CountWindow(100) unless named)",
        "bare",
        (
            BARE,
            PARTIAL,
            sync("minimal-wrapper", "floor", lambda: MinimalWrapper(work)),
            *hardy_cases(lambda c: _windowed(c, work)),
            sync("hardy-c-slow-calls", "hardy", lambda: _windowed(core("c"), work, slow_call_duration=10.0)),
            sync("hardy-c-plus-one-clock-read", "hardy", lambda: _windowed(core("c"), work_and_clock)),
            sync("hardy-c-TimeWindow(60)", "hardy", lambda: _time_windowed(core("c"), work)),
            sync("hardy-c-no-window", "hardy", lambda: _breaker(core("c"), work)),
            sync("hardy-py-slow-calls", "hardy", lambda: _windowed(core("py"), work, slow_call_duration=10.0)),
        ),
    ),
)

BY_GROUP = {scenario.group: scenario for scenario in SCENARIOS}
