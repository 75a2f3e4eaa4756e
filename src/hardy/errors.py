"""The exceptions hardy raises.

Every error of the library derives from :class:`HardyError`, so one
``except hardy.HardyError`` catches them all. The exceptions raised by the
functions hardy protects are never wrapped or replaced: they propagate with
their own type, message and traceback.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AllFallbacksFailedError",
    "BulkheadFullError",
    "CircuitOpenError",
    "HardyError",
    "RateLimitExceededError",
    "TimeoutError",
]


class HardyError(Exception):
    """Base class of the library's own errors.

    Example::

        try:
            protected_call()
        except hardy.HardyError as exc:
            log.warning("hardy refused the call: %s", exc)
    """


class CircuitOpenError(HardyError):
    """A circuit breaker rejected the call without running it.

    ``name`` is the breaker's name and ``reset_time`` the number of seconds
    until the breaker lets a trial call through (``0.0`` when the breaker is
    half-open and all its trial slots are taken, or forced open).
    ``last_failure`` is the exception that last opened the circuit.

    The constructor stores its arguments in ``args`` and nothing else, so
    the breaker can build a fresh instance for every rejection for the price
    of an empty exception; the message is formatted only when it is read.

    Example::

        try:
            fetch_user(42)
        except hardy.CircuitOpenError as exc:
            retry_after = exc.reset_time
    """

    def __init__(self, name: str, reset_time: float, last_failure: BaseException | None = None) -> None:
        if last_failure is None:
            super().__init__(name, reset_time)
        else:
            super().__init__(name, reset_time, last_failure)

    @property
    def name(self) -> str:
        """The name of the breaker that rejected the call."""
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def reset_time(self) -> float:
        """Seconds until the breaker admits a trial call."""
        return self.args[1]  # type: ignore[no-any-return]

    @property
    def last_failure(self) -> BaseException | None:
        """The exception that last opened the circuit; ``None`` when it was opened by hand, by a
        result, by an overdue trial or by another process."""
        return self.args[2] if len(self.args) > 2 else None

    def __str__(self) -> str:
        name, reset_time = self.args[0], self.args[1]
        # The reference's words, which users match in logs and tests.
        if reset_time > 0.0:
            return f"Circuit breaker '{name}' is open. Resets in {reset_time:.1f}s"
        return f"Circuit breaker '{name}' is open. Resets in 0.0s: its trial calls are in progress"

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[Any, ...]]:
        return (type(self), (self.name, self.reset_time, self.last_failure))


class TimeoutError(HardyError, builtins.TimeoutError):  # noqa: A001 - the name is the point
    """An operation did not finish within its deadline.

    It subclasses the builtin :class:`TimeoutError`, so ``except TimeoutError``
    catches both.

    Example::

        try:
            await slow_call()
        except hardy.TimeoutError as exc:
            print(exc.operation, exc.timeout)
    """

    def __init__(self, operation: str, timeout: float) -> None:
        super().__init__(f"Operation '{operation}' timed out after {timeout}s")
        self.operation = operation
        self.timeout = timeout

    def __reduce__(self) -> tuple[type[TimeoutError], tuple[str, float]]:
        return (type(self), (self.operation, self.timeout))


class AllFallbacksFailedError(HardyError, RuntimeError):
    """Every function of a fallback chain raised.

    ``errors`` holds the exceptions in the order they were raised; the error
    is raised ``from`` the last one, so no failure is lost.

    Example::

        try:
            chain.execute()
        except hardy.AllFallbacksFailedError as exc:
            for error in exc.errors:
                log.info("step failed: %r", error)
    """

    def __init__(self, name: str, errors: list[BaseException]) -> None:
        super().__init__(f"All fallbacks failed for {name}")
        self.name: str = name
        self.errors: list[BaseException] = list(errors)

    def __reduce__(self) -> tuple[type[AllFallbacksFailedError], tuple[str, list[BaseException]]]:
        return (type(self), (self.name, self.errors))


class BulkheadFullError(HardyError):
    """A bulkhead turned the call away: it was full for as long as the call could wait.

    ``name`` is the bulkhead's name, ``max_concurrent`` its limit and
    ``max_wait`` how long the call waited (seconds; ``0.0``: not at all).
    Like :class:`CircuitOpenError`, it keeps its arguments in ``args`` and
    formats its message only when it is read.

    Example::

        try:
            render(page)
        except hardy.BulkheadFullError as exc:
            return busy_page(exc.name)
    """

    def __init__(self, name: str, max_concurrent: int, max_wait: float) -> None:
        super().__init__(name, max_concurrent, max_wait)

    @property
    def name(self) -> str:
        """The name of the bulkhead that turned the call away."""
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def max_concurrent(self) -> int:
        """The bulkhead's limit on concurrent calls."""
        return self.args[1]  # type: ignore[no-any-return]

    @property
    def max_wait(self) -> float:
        """How long the call waited for a slot, in seconds."""
        return self.args[2]  # type: ignore[no-any-return]

    def __str__(self) -> str:
        name, limit, waited = self.args
        if waited > 0.0:
            return f"bulkhead {name!r} is full ({limit} calls inside) and no slot freed up within {waited:g}s"
        return f"bulkhead {name!r} is full ({limit} calls inside)"

    def __reduce__(self) -> tuple[type[BulkheadFullError], tuple[str, int, float]]:
        return (type(self), (self.name, self.max_concurrent, self.max_wait))


class RateLimitExceededError(HardyError):
    """A rate limiter turned the call away: no permit frees up within the time it could wait.

    ``name`` is the limiter's name and ``retry_after`` the seconds until the
    next permit frees up (what an HTTP ``Retry-After`` header would carry).
    Like :class:`CircuitOpenError`, it keeps its arguments in ``args`` and
    formats its message only when it is read.

    Example::

        try:
            call_api()
        except hardy.RateLimitExceededError as exc:
            schedule_later(exc.retry_after)
    """

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(name, retry_after)

    @property
    def name(self) -> str:
        """The name of the rate limiter that turned the call away."""
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def retry_after(self) -> float:
        """Seconds until the limiter has a permit again."""
        return self.args[1]  # type: ignore[no-any-return]

    def __str__(self) -> str:
        name, retry_after = self.args
        return f"rate limiter {name!r} is over its rate; the next permit frees up in {retry_after:.6g}s"

    def __reduce__(self) -> tuple[type[RateLimitExceededError], tuple[str, float]]:
        return (type(self), (self.name, self.retry_after))
