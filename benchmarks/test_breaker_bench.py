"""Circuit breaker cost per call: hardy (compiled and pure) beside the floors and peers.

Run: ``python -m pytest benchmarks --benchmark-only`` (or ``python -m benchmarks.targets``
for the target ratios of one run).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import tracemalloc
from typing import Any

import pytest

from ._harness import (
    IMPLEMENTATIONS,
    PARTIAL,
    MinimalWrapper,
    async_work,
    load_core,
    peer,
    raise_value_error,
    unrolled,
    unrolled_await,
    unrolled_catching,
    unrolled_raise_same_frame,
    work,
)

pybreaker = peer("pybreaker")
circuitbreaker = peer("circuitbreaker")


class Failure(Exception):
    pass


def _fail(x: int) -> None:
    raise Failure()


# -- closed, success ------------------------------------------------------------

CLOSED: dict[str, Any] = {
    "bare": lambda: work,
    "partial": lambda: PARTIAL,
    "minimal-wrapper": lambda: MinimalWrapper(work),
    "hardy-c": lambda: load_core("c").CircuitBreaker("bench")(work),
    "hardy-py": lambda: load_core("py").CircuitBreaker("bench")(work),
}
if pybreaker is not None:
    CLOSED["pybreaker"] = lambda: pybreaker.CircuitBreaker()(work)
if circuitbreaker is not None:
    CLOSED["circuitbreaker"] = lambda: circuitbreaker.CircuitBreaker(name="bench-closed")(work)


@pytest.mark.benchmark(group="breaker-closed-success")
@pytest.mark.parametrize("case", list(CLOSED))
def test_closed_success(benchmark: Any, case: str) -> None:
    run = unrolled(CLOSED[case]())
    benchmark(run)


# -- open, rejection ---------------------------------------------------------------


def _open_hardy(name: str) -> Any:
    core = load_core(name)
    breaker = core.CircuitBreaker("bench-open", failure_threshold=1, reset_timeout=3600)
    breaker.record_failure(Failure())
    return breaker(work), core.CircuitBreaker.__module__


def _open_pybreaker() -> Any:
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
    protected = breaker(_fail)
    with contextlib.suppress(Exception):
        protected(1)
    return protected


def _open_circuitbreaker() -> Any:
    protected = circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=3600, name="bench-open")(_fail)
    with contextlib.suppress(Exception):
        protected(1)
    return protected


OPEN: dict[str, Any] = {
    "raise-ValueError-same-frame": lambda: (None, None),
    "raise-ValueError": lambda: (raise_value_error, ValueError),
    "hardy-c": lambda: (_open_hardy("c")[0], Exception),
    "hardy-py": lambda: (_open_hardy("py")[0], Exception),
}
if pybreaker is not None:
    OPEN["pybreaker"] = lambda: (_open_pybreaker(), Exception)
if circuitbreaker is not None:
    OPEN["circuitbreaker"] = lambda: (_open_circuitbreaker(), Exception)


@pytest.mark.benchmark(group="breaker-open-rejection")
@pytest.mark.parametrize("case", list(OPEN))
def test_open_rejection(benchmark: Any, case: str) -> None:
    fn, exc = OPEN[case]()
    benchmark(unrolled_raise_same_frame() if fn is None else unrolled_catching(fn, exc))


# -- async, closed, success -----------------------------------------------------------

ASYNC: dict[str, Any] = {
    "bare-await": lambda: async_work,
    "hardy-c": lambda: load_core("c").CircuitBreaker("bench")(async_work),
    "hardy-py": lambda: load_core("py").CircuitBreaker("bench")(async_work),
}
if circuitbreaker is not None:
    ASYNC["circuitbreaker"] = lambda: circuitbreaker.CircuitBreaker(name="bench-async")(async_work)


@pytest.mark.benchmark(group="breaker-async-closed-success")
@pytest.mark.parametrize("case", list(ASYNC))
def test_async_closed_success(benchmark: Any, case: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        benchmark(unrolled_await(ASYNC[case](), loop))
    finally:
        loop.close()


# -- 8 threads through one breaker ------------------------------------------------------

THREADS = 8
CALLS_PER_THREAD = 25


def _sleep_2ms() -> None:
    time.sleep(0.002)


def _eight_threads(fn: Any) -> None:
    def worker() -> None:
        for _ in range(CALLS_PER_THREAD):
            fn()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


THREADED: dict[str, Any] = {
    "bare": lambda: _sleep_2ms,
    "hardy-c": lambda: load_core("c").CircuitBreaker("bench")(_sleep_2ms),
    "hardy-py": lambda: load_core("py").CircuitBreaker("bench")(_sleep_2ms),
}
if pybreaker is not None:
    THREADED["pybreaker"] = lambda: pybreaker.CircuitBreaker()(_sleep_2ms)


@pytest.mark.benchmark(group="breaker-8-threads-2ms", min_rounds=3)
@pytest.mark.parametrize("case", list(THREADED))
def test_eight_threads(benchmark: Any, case: str) -> None:
    fn = THREADED[case]()
    benchmark.pedantic(_eight_threads, args=(fn,), rounds=15, iterations=1, warmup_rounds=1)


# -- memory ------------------------------------------------------------------------------

BREAKERS = 100_000


@pytest.mark.benchmark(group="breaker-memory")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_bytes_per_breaker(benchmark: Any, implementation: str) -> None:
    core = load_core(implementation)
    names = [f"breaker-{i}" for i in range(BREAKERS)]

    def measure() -> float:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        breakers = [core.CircuitBreaker(name) for name in names]
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del breakers
        return (after - before) / BREAKERS

    per_breaker = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_breaker"] = per_breaker
