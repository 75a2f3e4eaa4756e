"""Retries with exponential backoff and jitter: ``retry`` and ``retry_with_backoff``.

The retry loop and the delay calculation live in the core; this module holds
the decorator and the one-off call helper.

Stacking with a circuit breaker: put ``@retry`` *outside*
``@circuit_breaker``. Each attempt then goes through the breaker, failures
count towards opening it, and once it is open the retry gives up at once on
:class:`~hardy.CircuitOpenError` instead of hammering it (name
``CircuitOpenError`` in ``retryable_exceptions`` to retry it anyway)::

    @hardy.retry(max_attempts=4, retryable_exceptions=(ConnectionError,))
    @hardy.circuit_breaker(failure_threshold=5, reset_timeout=30)
    def fetch(url: str) -> bytes: ...
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from . import _core
from ._types import P, R
from .jitter import Jitter

if TYPE_CHECKING:
    from ._core import RetryConfig

__all__ = ["Jitter", "RetryConfig", "retry", "retry_with_backoff"]


def __getattr__(name: str) -> Any:
    # ``from hardy.retry import RetryConfig`` as from the reference's retry
    # module, read from the core in use when it is asked for.
    if name == "RetryConfig":
        return _core.RetryConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@overload
def retry(max_attempts: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    max_attempts: int = 3,
    backoff_factor: float = 2.0,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: bool | Jitter = True,
    retryable_exceptions: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    on_retry: Callable[[BaseException | None, int], Any] | None = None,
    *,
    retry_on_result: Callable[[Any], object] | None = None,
    deadline: float | None = None,
    random: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry(
    max_attempts: int | Callable[..., Any] = 3,
    backoff_factor: float = 2.0,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: bool | Jitter = True,
    retryable_exceptions: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    on_retry: Callable[[BaseException | None, int], Any] | None = None,
    *,
    retry_on_result: Callable[[Any], object] | None = None,
    deadline: float | None = None,
    random: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Retry a function on failure, with exponential backoff and jitter.

    Up to ``max_attempts`` calls in all. After a failed attempt ``n`` that
    raised one of ``retryable_exceptions`` (default: any ``Exception``, but
    never :class:`~hardy.CircuitOpenError` unless named), ``on_retry(exception,
    attempt)`` is called (awaited when both it and the function are async),
    then the wrapper sleeps ``RetryConfig.get_delay(n)`` (a delay of 0 does not
    sleep at all) and tries again. After the last attempt the last exception
    is re-raised unchanged; other exceptions propagate at once.

    Keyword-only: ``retry_on_result(result)`` returning true makes a result
    count as a failure (when attempts run out, the last result is returned);
    ``deadline`` is a budget in seconds for all attempts and sleeps (no sleep
    that would end past it is started; the last error is raised then);
    ``random`` and ``clock`` make delays reproducible in tests (see also
    :mod:`hardy.testing`). Works bare (``@retry``) and called, on functions,
    ``async def`` functions, methods and other callables.

    Example::

        @hardy.retry(max_attempts=5, initial_delay=0.2, retryable_exceptions=(ConnectionError,),
                     on_retry=lambda exc, attempt: log.warning("attempt %d failed: %s", attempt, exc))
        async def fetch(url: str) -> bytes: ...
    """
    if callable(max_attempts) and not isinstance(max_attempts, int):
        return retry()(max_attempts)
    attempts: Any = max_attempts  # an int here; RetryConfig checks it
    config = _core.RetryConfig(
        attempts,
        backoff_factor,
        initial_delay,
        max_delay,
        jitter,
        (Exception,) if retryable_exceptions is None else retryable_exceptions,
        retry_on_result=retry_on_result,
        deadline=deadline,
        random=_random.random if random is None else random,
        clock=clock,
    )
    if on_retry is not None and not callable(on_retry):
        raise TypeError(f"on_retry must be callable, got {on_retry!r} ({type(on_retry).__name__})")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        return _core.retrying(config, func, on_retry)

    return decorate


def retry_with_backoff(func: Callable[..., R], /, *args: Any, config: Any = None, **kwargs: Any) -> R:
    """Call ``func(*args, **kwargs)`` once, retrying it as ``config`` says.

    Runs synchronously for a sync function; for an async function it returns
    the awaitable. ``config`` defaults to ``RetryConfig()``.

    Example::

        data = hardy.retry_with_backoff(fetch, url, config=hardy.RetryConfig(max_attempts=5))
        data = await hardy.retry_with_backoff(async_fetch, url)
    """
    if config is None:
        config = _core.RetryConfig()
    return _core.retrying(config, func)(*args, **kwargs)
