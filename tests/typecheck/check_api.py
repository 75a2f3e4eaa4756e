"""Type-checked by mypy (``mypy --strict tests/typecheck``) and pyright (strict), never run.

Each ``assert_type`` states what a type checker must infer for a decorated
function: the wrapped signature and return type survive, async included.
Misuse carries ``# type: ignore[code]`` for mypy and ``# pyright:
ignore[rule]`` for pyright; both report an ignore that is not needed, so
misuse that a checker stops flagging fails the check. The coroutine of an
``async def`` is ``Coroutine`` for mypy and ``CoroutineType`` for pyright:
it is assigned to a ``Coroutine`` variable rather than ``assert_type``-d.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

import hardy


@hardy.circuit_breaker
def bare(x: int, *, name: str = "") -> bytes:
    return b""


@hardy.circuit_breaker(name="called", failure_threshold=3)
def called(x: int) -> str:
    return ""


@hardy.circuit_breaker
async def fetch(url: str) -> dict[str, int]:
    return {}


breaker = hardy.CircuitBreaker("typed")


@breaker
def direct(a: float, b: float) -> float:
    return a + b


assert_type(bare(1, name="x"), bytes)
assert_type(called(2), str)
pending: Coroutine[Any, Any, dict[str, int]] = fetch("u")
pending.close()
assert_type(direct(1.0, 2.0), float)
assert_type(bare.breaker, hardy.CircuitBreaker)
assert_type(breaker.state, hardy.CircuitState)
assert_type(breaker.get_stats(), dict[str, Any])


async def use() -> None:
    assert_type(await fetch("u"), dict[str, int])


bare("not an int")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
called(1, 2)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


@hardy.retry
def retried_bare(x: int) -> bytes:
    return b""


@hardy.retry(max_attempts=5, retryable_exceptions=(ConnectionError,))
async def retried_async(url: str, *, timeout: float = 1.0) -> list[str]:
    return []


assert_type(retried_bare(1), bytes)
retried_pending: Coroutine[Any, Any, list[str]] = retried_async("u", timeout=2.0)
retried_pending.close()
assert_type(hardy.RetryConfig().get_delay(2), float)
assert_type(hardy.retry_with_backoff(retried_bare, 3), bytes)


async def use_retry() -> None:
    assert_type(await retried_async("u"), list[str])


retried_bare("x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
retried_async("u", timeout="slow")  # type: ignore[arg-type, unused-coroutine]  # pyright: ignore[reportArgumentType, reportUnusedCoroutine]


def primary(user_id: int) -> str:
    return ""


@hardy.fallback(primary, default="")
def chained(user_id: int) -> str:
    return ""


@hardy.timeout(1.0)
def bounded(path: str) -> bytes:
    return b""


@hardy.timeout(1.0)
async def bounded_async(path: str) -> bytes:
    return b""


assert_type(chained(1), str)
assert_type(hardy.with_fallback(primary, [primary])(2), str)
assert_type(bounded("p"), bytes)
timed_pending: Coroutine[Any, Any, bytes] = bounded_async("p")
timed_pending.close()


async def use_timeouts() -> None:
    assert_type(await bounded_async("p"), bytes)
    assert_type(await hardy.with_timeout(bounded_async("p"), 1.0), bytes)


chained("x")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
bounded(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


limiter = hardy.RateLimiter("typed-limit", rate=5, burst=2, max_wait=0.1)


@limiter
def limited(x: int) -> str:
    return ""


assert_type(limited(1), str)
assert_type(limiter.try_acquire(), bool)
assert_type(hardy.RateLimitExceededError("typed-limit", 0.5).retry_after, float)
assert_type(hardy.RateLimiter("typed-limit", rate=5, store=None).store, "hardy.RedisStore | None")
hardy.RateLimiter("typed-limit", rate=5, store="redis://")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


budget = hardy.RetryBudget(ratio=0.1, min_per_second=5, window=10.0)


@hardy.retry(max_attempts=3, budget=budget)
def budgeted(x: int) -> str:
    return ""


assert_type(budgeted(1), str)
assert_type(budget.balance, int)
assert_type(budget.statistics, hardy.RetryBudgetStatistics)
assert_type(budget.statistics.exhausted, int)
assert_type(hardy.RetryConfig(budget=budget).budget, "hardy.RetryBudget | None")
for _attempt in hardy.attempts(budget=budget):
    pass
hardy.retry(budget=0.2)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
hardy.RetryBudget(name=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
assert_type(hardy.RetryBudget(store=None).store, "hardy.RedisStore | None")
