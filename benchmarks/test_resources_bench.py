"""Memory and threads: bytes per breaker, thread scaling, flat memory under rejections."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

import hardy

from . import peers
from ._harness import load_core

THREADS = 8
CALLS_PER_THREAD = 25
BREAKERS = 100_000
REJECTIONS = 1_000_000


def sleep_2ms() -> None:
    time.sleep(0.002)


def eight_threads(fn: Callable[[], Any]) -> None:
    def worker() -> None:
        for _ in range(CALLS_PER_THREAD):
            fn()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def threaded_cases() -> dict[str, Callable[[], Callable[[], Any]]]:
    cases: dict[str, Callable[[], Callable[[], Any]]] = {
        "bare": lambda: sleep_2ms,
        "hardy-c": lambda: load_core("c").CircuitBreaker("bench")(sleep_2ms),
        "hardy-py": lambda: load_core("py").CircuitBreaker("bench")(sleep_2ms),
    }
    for name in peers.breaker_closed(lambda x: x):
        cases[name] = lambda name=name: _no_argument(peers.breaker_closed(lambda x: sleep_2ms())[name])
    return cases


def _no_argument(fn: Callable[[int], Any]) -> Callable[[], Any]:
    return lambda: fn(1)


THREADED = threaded_cases()


@pytest.mark.benchmark(group="breaker-8-threads-2ms", min_rounds=3)
@pytest.mark.parametrize("case", list(THREADED))
def test_eight_threads(benchmark: Any, case: str) -> None:
    fn = THREADED[case]()
    benchmark.pedantic(eight_threads, args=(fn,), rounds=15, iterations=1, warmup_rounds=1)


def bytes_per_breaker(make: Callable[[str], Any]) -> float:
    """What one breaker costs (tracemalloc): the breaker and what it allocates, not the list that holds them.

    The names and the list are made before tracing starts; a list built while
    tracing would add its own 8 bytes a slot (and its growth) to every breaker.
    """
    names = [f"breaker-{i}" for i in range(BREAKERS)]
    breakers: list[Any] = [None] * BREAKERS
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index, name in enumerate(names):
        breakers[index] = make(name)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del breakers
    return (after - before) / BREAKERS


@pytest.mark.benchmark(group="breaker-memory")
@pytest.mark.parametrize("implementation", ["c", "py"])
def test_bytes_per_breaker(benchmark: Any, implementation: str) -> None:
    core = load_core(implementation)
    per_breaker = benchmark.pedantic(bytes_per_breaker, args=(core.CircuitBreaker,), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_breaker"] = per_breaker


# One window for all: its settings are shared, as a registry's breakers share theirs;
# what is measured is what each breaker allocates for its own window.
WINDOW_100 = hardy.CountWindow(size=100)


def windowed_breakers(core: Any) -> Callable[[str], Any]:
    """What ``bytes_per_breaker`` makes for the CountWindow(100) figure."""
    return lambda name: core.CircuitBreaker(name, window=WINDOW_100)


@pytest.mark.benchmark(group="breaker-memory-window")
@pytest.mark.parametrize("implementation", ["c", "py"])
def test_bytes_per_breaker_with_a_count_window(benchmark: Any, implementation: str) -> None:
    make = windowed_breakers(load_core(implementation))
    per_breaker = benchmark.pedantic(bytes_per_breaker, args=(make,), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_breaker"] = per_breaker


def retained_after_rejections(protected: Callable[[int], Any], count: int) -> float:
    """Bytes still allocated after ``count`` rejected calls (tracemalloc), per call."""
    for _ in range(1000):  # warm up caches and free lists
        try:  # noqa: SIM105 - the way callers handle a rejection
            protected(1)
        except Exception:
            pass
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        try:  # noqa: SIM105 - the way callers handle a rejection
            protected(1)
        except Exception:
            pass
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count


@pytest.mark.benchmark(group="breaker-open-memory-flat")
@pytest.mark.parametrize("implementation", ["c", "py"])
def test_open_breaker_memory_stays_flat(benchmark: Any, implementation: str) -> None:
    core = load_core(implementation)
    breaker = core.CircuitBreaker("flat", failure_threshold=1, reset_timeout=3600)
    breaker.record_failure(ValueError("trip"))
    protected = breaker(lambda x: x)
    retained = benchmark.pedantic(retained_after_rejections, args=(protected, REJECTIONS), rounds=1, iterations=1)
    benchmark.extra_info["retained_bytes_per_rejection"] = retained
