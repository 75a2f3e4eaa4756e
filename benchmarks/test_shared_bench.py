"""Breakers shared through Redis: hardy's RedisStore beside the local breaker and
beside pybreaker's Redis storage, against a real local ``redis-server``.

Run: ``python -m pytest benchmarks/test_shared_bench.py --benchmark-group-by=group``.
Each round makes ``CALLS`` calls; compare the cases of one group.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from tests.redis_server import RedisServer

import hardy

from ._harness import load_core, unrolled, unrolled_catching
from .peers import _load

CALLS = 100  # pybreaker's storage makes round trips on every call
NEVER = 10**9  # a failure threshold that is never reached: every failure costs the same

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    if os.environ.get("HARDY_TEST_REDIS_PORT"):
        yield int(os.environ["HARDY_TEST_REDIS_PORT"])
        return
    server = RedisServer().start()
    yield server.port
    server.stop()


def ok(_: int) -> int:
    return 1


def boom(_: int) -> int:
    raise ValueError("x")


def hardy_breaker(core: str, port: int | None, threshold: int) -> Any:
    store = None
    if port is not None:
        store = hardy.RedisStore(redis.Redis(host="127.0.0.1", port=port), prefix=f"bench{uuid.uuid4().hex[:6]}:")
    return load_core(core).CircuitBreaker("bench", failure_threshold=threshold, store=store)


def pybreaker_breaker(port: int | None, threshold: int) -> Any:
    pybreaker = _load("pybreaker")
    if pybreaker is None:
        pytest.skip("pybreaker is not installed")
    if port is None:
        return pybreaker.CircuitBreaker(fail_max=threshold)
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, redis.Redis(host="127.0.0.1", port=port), namespace=f"bench{uuid.uuid4().hex[:6]}"
    )
    return pybreaker.CircuitBreaker(fail_max=threshold, state_storage=storage)


CASES: dict[str, Callable[[int | None, int], Any]] = {
    "hardy-c": lambda port, threshold: hardy_breaker("c", None, threshold),
    "hardy-c-redis": lambda port, threshold: hardy_breaker("c", port, threshold),
    "hardy-py": lambda port, threshold: hardy_breaker("py", None, threshold),
    "hardy-py-redis": lambda port, threshold: hardy_breaker("py", port, threshold),
    "pybreaker": lambda port, threshold: pybreaker_breaker(None, threshold),
    "pybreaker-redis": lambda port, threshold: pybreaker_breaker(port, threshold),
}


@pytest.mark.parametrize("case", ["bare", *CASES])
def test_closed_success(benchmark: Any, port: int, case: str) -> None:
    benchmark.group = "shared-closed-success"
    benchmark.extra_info["case"] = case
    fn = ok if case == "bare" else CASES[case](port, NEVER)(ok)
    benchmark(unrolled(fn, calls=CALLS))


@pytest.mark.parametrize("case", ["raise-ValueError", *CASES])
def test_failure(benchmark: Any, port: int, case: str) -> None:
    benchmark.group = "shared-failure"
    benchmark.extra_info["case"] = case
    fn = boom if case == "raise-ValueError" else CASES[case](port, NEVER)(boom)
    benchmark(unrolled_catching(fn, ValueError, calls=CALLS))
