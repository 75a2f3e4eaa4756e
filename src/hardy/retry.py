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

from . import _core, _descriptors, _retry_events
from ._types import Decorator, ExceptionsArg, P, R, WrappedCallable, WrappedClassMethod, WrappedStaticMethod
from .jitter import Jitter

if TYPE_CHECKING:
    from ._core import RetryConfig
    from ._retry_state import RetryState
    from .budget import RetryBudget

__all__ = ["Jitter", "RetryConfig", "retry", "retry_with_backoff"]


def __getattr__(name: str) -> Any:
    # ``from hardy.retry import RetryConfig`` as from the reference's retry
    # module, read from the core in use when it is asked for.
    if name == "RetryConfig":
        return _core.RetryConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Bare use first: on a static or class method (hardy above @staticmethod /
# @classmethod), then on any callable; then the called form.
@overload
def retry(max_attempts: staticmethod[P, R], /) -> WrappedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]


@overload
def retry(max_attempts: classmethod[Any, P, R], /) -> WrappedClassMethod[P, R]: ...


@overload
def retry(max_attempts: Callable[P, R], /) -> WrappedCallable[P, R]: ...


@overload
def retry(
    max_attempts: int = 3,
    backoff_factor: float = 2.0,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: bool | Jitter = True,
    retryable_exceptions: ExceptionsArg | None = None,
    on_retry: Callable[[BaseException | None, int], Any] | None = None,
    *,
    retry_on_result: Callable[[Any], object] | None = None,
    deadline: float | None = None,
    random: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_after: Callable[[Any], float | None] | None = None,
    before_sleep: Callable[[RetryState], object] | None = None,
    on_giveup: Callable[[RetryState], object] | None = None,
    sleep: Callable[[float], object] | None = None,
    budget: RetryBudget | None = None,
) -> Decorator: ...


def retry(
    max_attempts: int | Callable[..., Any] | staticmethod[Any, Any] | classmethod[Any, Any, Any] = 3,
    backoff_factor: float = 2.0,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: bool | Jitter = True,
    retryable_exceptions: ExceptionsArg | None = None,
    on_retry: Callable[[BaseException | None, int], Any] | None = None,
    *,
    retry_on_result: Callable[[Any], object] | None = None,
    deadline: float | None = None,
    random: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_after: Callable[[Any], float | None] | None = None,
    before_sleep: Callable[[RetryState], object] | None = None,
    on_giveup: Callable[[RetryState], object] | None = None,
    sleep: Callable[[float], object] | None = None,
    budget: RetryBudget | None = None,
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
    :mod:`hardy.testing`); ``retry_after(exception_or_result)`` returns the
    delay a server asked for (seconds, used as is: not capped by
    ``max_delay``, still bounded by ``deadline``) or ``None`` for the
    backoff; ``before_sleep(state)`` runs before each sleep, after
    ``on_retry``, and ``on_giveup(state)`` when attempts or the deadline run
    out, both with a :class:`~hardy.RetryState`; ``sleep(seconds)`` replaces
    ``time.sleep`` / ``asyncio.sleep`` (awaited if it returns an awaitable).
    The wrapper has ``.statistics`` (:class:`~hardy.RetryStatistics`) and
    ``.retry_with(**changes)``, a new wrapper with some settings changed.
    ``budget`` (a :class:`~hardy.RetryBudget`, shareable between functions)
    caps retries to a ratio of recent calls: a retry it refuses is not
    attempted, and the call gives up at once with the last error.
    Generator functions are retried until their first item. Works bare (``@retry``) and called, on functions,
    ``async def`` functions, methods, static and class methods (above or
    below ``@staticmethod`` / ``@classmethod``) and other callables.

    Example::

        @hardy.retry(max_attempts=5, initial_delay=0.2, retryable_exceptions=(ConnectionError,),
                     on_retry=lambda exc, attempt: log.warning("attempt %d failed: %s", attempt, exc))
        async def fetch(url: str) -> bytes: ...
    """
    if isinstance(max_attempts, (staticmethod, classmethod)) or (
        callable(max_attempts) and not isinstance(max_attempts, int)
    ):
        bare: Callable[[Any], Any] = retry()
        return bare(max_attempts)
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
        retry_after=retry_after,
        sleep=sleep,
        budget=budget,
    )
    for name, hook in (("on_retry", on_retry), ("before_sleep", before_sleep), ("on_giveup", on_giveup)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be callable, got {hook!r} ({type(hook).__name__})")

    def decorate(func: Callable[..., Any]) -> Any:
        rewrapped = _descriptors.rewrap(func, decorate)
        if rewrapped is not None:
            return rewrapped
        wrapper = _core.retrying(config, func, on_retry, before_sleep=before_sleep, on_giveup=on_giveup)
        _retry_events.declare(wrapper)  # its metrics show zero before the first retry
        return wrapper

    return decorate


# Without ``config`` the arguments are checked against ``func``'s signature.
# A keyword-only ``config`` cannot sit between ``*args: P.args`` and
# ``**kwargs: P.kwargs`` (PEP 612), so with one only the result is typed.
@overload
def retry_with_backoff(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


@overload
def retry_with_backoff(  # type: ignore[overload-cannot-match]
    func: Callable[..., R], /, *args: Any, config: RetryConfig | None, **kwargs: Any
) -> R: ...


def retry_with_backoff(func: Callable[..., R], /, *args: Any, config: Any = None, **kwargs: Any) -> R:
    """Call ``func(*args, **kwargs)`` once, retrying it as ``config`` says.

    Runs synchronously for a sync function; for an async function it returns
    the awaitable. ``config`` defaults to ``RetryConfig()``. Type checkers
    check the arguments against ``func``'s signature when ``config`` is left
    out (with ``config=``, only the result type).

    Example::

        data = hardy.retry_with_backoff(fetch, url, config=hardy.RetryConfig(max_attempts=5))
        data = await hardy.retry_with_backoff(async_fetch, url)
    """
    if config is None:
        config = _core.RetryConfig()
    return _core.retrying(config, func)(*args, **kwargs)
