"""Retry in the twin (the compiled one is ``hardy/_c/retry.pxi``).

The delays and the loop's decisions are :mod:`hardy.policies.retry`; this is
the loop around them: calling the function, the predicate, ``on_retry``, the
random source, the clock and the sleep.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .. import _retry_events, _sleep, _validate, _wrapping
from ..errors import CircuitOpenError
from ..jitter import Jitter
from ..policies import retry as policy
from ..policies.retry import RetryPolicy

if TYPE_CHECKING:
    from .._types import P, R

__all__ = ["RetryConfig", "retrying"]


class RetryConfig(RetryPolicy):
    """How to retry: how many attempts, which errors, and how long to wait between them.

    The wait after failed attempt ``n`` (1-based) starts from
    ``base = min(max_delay, initial_delay * backoff_factor ** (n - 1))`` and
    is then jittered (see :class:`~hardy.Jitter`; ``jitter=True`` is full
    jitter, uniform in ``[0, base]``). It always lies in ``[0, max_delay]``.
    Keyword-only: ``retry_on_result`` (a predicate that makes a returned value
    count as a failure), ``deadline`` (a budget in seconds for all attempts
    and sleeps), ``random`` (returns floats in ``[0, 1)``) and ``clock``
    (monotonic seconds), injectable for reproducible tests.

    Example::

        config = hardy.RetryConfig(max_attempts=5, initial_delay=0.1, max_delay=2.0,
                                   retryable_exceptions=(ConnectionError,))
        config.get_delay(3)   # somewhere in [0, 0.4]
    """

    __slots__ = ("__weakref__", "_clock", "_jitter_given", "_random", "_retry_on_result", "_retryable")

    def __init__(
        self,
        max_attempts: int = 3,
        backoff_factor: float = 2.0,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        jitter: bool | Jitter = True,
        retryable_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        *,
        retry_on_result: Callable[[Any], object] | None = None,
        deadline: float | None = None,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if getattr(self, "_retryable", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.retry_settings(
            max_attempts,
            backoff_factor,
            initial_delay,
            max_delay,
            jitter,
            retryable_exceptions,
            retry_on_result,
            deadline,
            random,
            clock,
        )
        policy.configure_retry(
            self,
            settings.max_attempts,
            settings.backoff_factor,
            settings.initial_delay,
            settings.max_delay,
            settings.jitter,
            settings.retry_circuit_open,
            settings.deadline is not None,
            0.0 if settings.deadline is None else settings.deadline,
        )
        self._retryable = settings.retryable_exceptions
        self._retry_on_result = settings.retry_on_result
        self._random = settings.random
        self._clock = settings.clock
        self._jitter_given: bool | Jitter = settings.jitter_given

    @property
    def max_attempts(self) -> int:
        """Calls in all, the first one included."""
        return self._max_attempts

    @property
    def backoff_factor(self) -> float:
        """How much the base delay grows after each failure."""
        return self._factor

    @property
    def initial_delay(self) -> float:
        """The base delay after the first failure, in seconds."""
        return self._initial

    @property
    def max_delay(self) -> float:
        """The longest delay, in seconds."""
        return self._max_delay

    @property
    def jitter(self) -> bool | Jitter:
        """How delays are randomised, as given: ``True``, ``False`` or a :class:`~hardy.Jitter` member."""
        return self._jitter_given

    @property
    def retryable_exceptions(self) -> tuple[type[BaseException], ...]:
        """The exception types that are retried."""
        return self._retryable

    @property
    def retry_on_result(self) -> Callable[[Any], object] | None:
        """The predicate that makes a returned value count as a failure, if any."""
        return self._retry_on_result

    @property
    def deadline(self) -> float | None:
        """The time budget for all attempts and sleeps, in seconds, if any."""
        return self._deadline if self._has_deadline else None

    def get_delay(self, attempt: int, previous_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based).

        ``previous_delay`` matters only for decorrelated jitter.

        Example::

            >>> hardy.RetryConfig(jitter=False).get_delay(3)
            4.0
        """
        attempt = _validate.positive_int("attempt", attempt)
        previous = -1.0 if previous_delay is None else _validate.seconds("previous_delay", previous_delay)
        return self._delay(attempt, previous)

    def _delay(self, attempt: int, previous: float) -> float:
        r = self._draw() if policy.draws(self) else 0.0
        return policy.delay(self, previous, r, policy.base_delay(self, attempt))

    def _draw(self) -> float:
        r = self._random()
        if type(r) is not float or not 0.0 <= r < 1.0:
            r = _validate.random_reading(self._random, r)
        return r

    def _retries(self, exc: BaseException) -> bool:
        return isinstance(exc, self._retryable) and (self._retry_circuit_open or not isinstance(exc, CircuitOpenError))

    def __reduce__(self) -> tuple[Any, ...]:
        return _validate.rebuild, (type(self), self._settings())

    def _settings(self) -> dict[str, Any]:
        """The keyword arguments that make this configuration again."""
        return {
            "max_attempts": self._max_attempts,
            "backoff_factor": self._factor,
            "initial_delay": self._initial,
            "max_delay": self._max_delay,
            "jitter": self._jitter_given,
            "retryable_exceptions": self._retryable,
            "retry_on_result": self._retry_on_result,
            "deadline": self.deadline,
            "random": self._random,
            "clock": self._clock,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_attempts={self._max_attempts}, backoff_factor={self._factor}, "
            f"initial_delay={self._initial}, max_delay={self._max_delay}, jitter={self._jitter_given!r})"
        )


def retrying(
    config: RetryConfig,
    func: Callable[P, R],
    on_retry: Callable[[BaseException | None, int], object] | None = None,
) -> Callable[P, R]:
    """Wrap ``func`` so that failed calls are retried as ``config`` says.

    ``on_retry(exception, attempt)`` runs before each sleep (``exception`` is
    ``None`` when ``retry_on_result`` asked for the retry); it is awaited when
    both it and ``func`` are async.
    """
    if not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig, got {config!r}")
    _validate.callable_arg("func", func)
    if on_retry is not None:
        _validate.callable_arg("on_retry", on_retry)
    c = config
    retry_on_result = c._retry_on_result
    timed = c._has_deadline
    clock = c._clock
    out_of_attempts = policy.out_of_attempts
    out_of_time = policy.out_of_time
    retried_hook = _retry_events.retried
    gave_up = _retry_events.gave_up
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)
        on_retry_is_async = on_retry is not None and _wrapping.is_async_callable(on_retry)

        async def retried_async(*args: Any, **kwargs: Any) -> Any:
            started = clock() if timed else 0.0
            attempt = 1
            previous = -1.0
            while True:
                try:
                    result = await async_func(*args, **kwargs)
                except Exception as exc:
                    if not c._retries(exc):
                        raise
                    if out_of_attempts(c, attempt):
                        gave_up(retried_async, exc, attempt)
                        raise
                    delay = c._delay(attempt, previous)
                    if timed and out_of_time(c, clock() - started, delay):
                        gave_up(retried_async, exc, attempt)
                        raise
                    retried_hook(retried_async, exc, attempt, delay)
                    if on_retry is not None:
                        if on_retry_is_async:
                            await on_retry(exc, attempt)  # type: ignore[misc]
                        else:
                            on_retry(exc, attempt)
                    if delay > 0.0:
                        await _sleep.async_sleep(delay)
                else:
                    if retry_on_result is None or not retry_on_result(result):
                        return result
                    if out_of_attempts(c, attempt):
                        gave_up(retried_async, None, attempt)
                        return result
                    delay = c._delay(attempt, previous)
                    if timed and out_of_time(c, clock() - started, delay):
                        gave_up(retried_async, None, attempt)
                        return result
                    retried_hook(retried_async, None, attempt, delay)
                    if on_retry is not None:
                        if on_retry_is_async:
                            await on_retry(None, attempt)  # type: ignore[misc]
                        else:
                            on_retry(None, attempt)
                    if delay > 0.0:
                        await _sleep.async_sleep(delay)
                previous = delay
                attempt += 1

        wrapper = _wrapping.copy_metadata(retried_async, func, is_async=True)
        wrapper.retry_config = config
        return wrapper  # type: ignore[no-any-return]

    if on_retry is not None and _wrapping.is_async_callable(on_retry):
        raise TypeError(f"on_retry {on_retry!r} is async but {func!r} is not: it could not be awaited")

    def retried(*args: Any, **kwargs: Any) -> Any:
        started = clock() if timed else 0.0
        attempt = 1
        previous = -1.0
        while True:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                if not c._retries(exc):
                    raise
                if out_of_attempts(c, attempt):
                    gave_up(retried, exc, attempt)
                    raise
                delay = c._delay(attempt, previous)
                if timed and out_of_time(c, clock() - started, delay):
                    gave_up(retried, exc, attempt)
                    raise
                retried_hook(retried, exc, attempt, delay)
                if on_retry is not None:
                    on_retry(exc, attempt)
                if delay > 0.0:
                    _sleep.sync_sleep(delay)
            else:
                if retry_on_result is None or not retry_on_result(result):
                    return result
                if out_of_attempts(c, attempt):
                    gave_up(retried, None, attempt)
                    return result
                delay = c._delay(attempt, previous)
                if timed and out_of_time(c, clock() - started, delay):
                    gave_up(retried, None, attempt)
                    return result
                retried_hook(retried, None, attempt, delay)
                if on_retry is not None:
                    on_retry(None, attempt)
                if delay > 0.0:
                    _sleep.sync_sleep(delay)
            previous = delay
            attempt += 1

    wrapper = _wrapping.copy_metadata(retried, func, is_async=False)
    wrapper.retry_config = config
    return wrapper  # type: ignore[no-any-return]
