"""The pure-Python twin of ``hardy._core_c``.

It implements exactly the behaviour of the compiled core and is used when the
extension is not built or when ``HARDY_NO_EXTENSIONS=1`` is set. Keep the two
in step: ``tests/test_parity.py`` drives both with the same random sequences
and compares their state and statistics after every step.

The breaker's state machine, in both cores:

* ``_admit()`` decides whether a call may start. It returns the breaker's
  *epoch* (a number that grows each time the breaker opens or is reset), or
  ``-1`` after counting a rejection.
* The call's outcome is settled with that epoch. An outcome whose epoch is no
  longer current belongs to a call that started before the breaker opened: it
  is counted in the totals but cannot move the state, so stale failures never
  extend an open period and stale successes never close a circuit.
* State changes happen inside one short critical section that runs no user
  code; listeners are called after it.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Awaitable, Callable
from typing import Any, cast

from . import _blocks, _events, _validate, _wrapping
from ._types import P, ProtectedCallable, R
from .errors import CircuitOpenError
from .state import CLOSED, HALF_OPEN, OPEN, STATE_BY_CODE, CircuitState

__all__ = ["IMPLEMENTATION", "CircuitBreaker", "protect"]

IMPLEMENTATION = "py"

# The closed-state success count is bumped without a lock where the GIL makes
# that atomic; a free-threaded interpreter takes the lock instead.
_GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


class CircuitBreaker:
    """A circuit breaker: stop calling a dependency that keeps failing.

    CLOSED lets calls through and counts consecutive failures; at
    ``failure_threshold`` it opens. OPEN rejects calls at once with
    :class:`~hardy.CircuitOpenError` for ``reset_timeout`` seconds, then turns
    HALF_OPEN, which admits at most ``half_open_max_calls`` trial calls: when
    that many have succeeded it closes, and any trial failure opens it again.
    Exceptions of the ``excluded_exceptions`` types count as neither success
    nor failure. ``clock`` returns monotonic seconds and may be replaced in
    tests.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)

        @breaker
        def charge(order_id: int) -> str: ...

        with breaker:
            legacy_charge()
    """

    __slots__ = (
        "_clock",
        "_epoch",
        "_excluded",
        "_failure_count",
        "_failures",
        "_half_open_max",
        "_ignored",
        "_listeners",
        "_lock",
        "_name",
        "_opened",
        "_opened_at",
        "_rejections",
        "_reset_timeout",
        "_state",
        "_successes",
        "_threshold",
        "_trial_successes",
        "_trials",
    )

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        excluded_exceptions: type[BaseException] | tuple[type[BaseException], ...] | None = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        (
            self._name,
            self._threshold,
            self._reset_timeout,
            self._half_open_max,
            self._excluded,
            self._clock,
        ) = _validate.breaker_settings(
            name, failure_threshold, reset_timeout, half_open_max_calls, excluded_exceptions, clock
        )
        self._listeners: list[Callable[..., Any]] = []
        self._lock = threading.Lock()
        self._state = CLOSED
        self._epoch = 0
        self._failure_count = 0
        self._trials = 0
        self._trial_successes = 0
        self._opened_at = 0.0
        self._successes = 0
        self._failures = 0
        self._ignored = 0
        self._rejections = 0
        self._opened = 0

    # -- the state machine ------------------------------------------------

    def _admit(self) -> int:
        if self._state == CLOSED:
            return self._epoch
        now = self._clock()  # user code: read before the critical section
        changed = False
        with self._lock:
            state = self._state
            if state == CLOSED:
                return self._epoch
            if state == OPEN:
                if now - self._opened_at < self._reset_timeout:
                    self._rejections += 1
                    return -1
                self._state = HALF_OPEN
                self._trials = 0
                self._trial_successes = 0
                changed = True
            if self._trials < self._half_open_max:
                self._trials += 1
                epoch = self._epoch
            else:
                self._rejections += 1
                epoch = -1
        if changed:
            self._notify(OPEN, HALF_OPEN)
        return epoch

    def _open(self, now: float) -> None:
        # Caller holds the lock.
        self._state = OPEN
        self._epoch += 1
        self._opened_at = now
        self._trials = 0
        self._trial_successes = 0
        self._opened += 1

    def _on_success(self, epoch: int) -> None:
        closed = False
        with self._lock:
            self._successes += 1
            if epoch == self._epoch:
                if self._state == CLOSED:
                    self._failure_count = 0
                elif self._state == HALF_OPEN:
                    self._trial_successes += 1
                    if self._trial_successes >= self._half_open_max:
                        self._state = CLOSED
                        self._failure_count = 0
                        self._trials = 0
                        self._trial_successes = 0
                        closed = True
        if closed:
            self._notify(HALF_OPEN, CLOSED)

    def _on_failure(self, epoch: int) -> None:
        now = self._clock()
        old = -1
        with self._lock:
            self._failures += 1
            if epoch == self._epoch:
                state = self._state
                if state == CLOSED:
                    self._failure_count += 1
                    if self._failure_count >= self._threshold:
                        self._open(now)
                        old = CLOSED
                elif state == HALF_OPEN:
                    self._open(now)
                    old = HALF_OPEN
        if old >= 0:
            self._notify(old, OPEN)

    def _on_exception(self, exc: BaseException, epoch: int) -> None:
        if not isinstance(exc, Exception):
            # Interrupted or cancelled: not an outcome, but a trial slot it
            # held must come back or the breaker would stay half-open forever.
            with self._lock:
                if epoch == self._epoch and self._state == HALF_OPEN:
                    self._trials -= 1
        elif isinstance(exc, self._excluded):
            with self._lock:
                self._ignored += 1
                if epoch == self._epoch and self._state == HALF_OPEN:
                    self._trials -= 1
        else:
            self._on_failure(epoch)

    def _rejection(self) -> CircuitOpenError:
        return CircuitOpenError(self._name, self.get_time_until_reset())

    def _notify(self, old: int, new: int) -> None:
        if self._listeners:
            _events.notify(self, self._listeners, old, new)

    # -- reading the breaker ----------------------------------------------

    def _state_code(self) -> int:
        state = self._state
        if state == OPEN and self._clock() - self._opened_at >= self._reset_timeout:
            return HALF_OPEN
        return state

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._name

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker."""
        return self._threshold

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before admitting trial calls."""
        return self._reset_timeout

    @property
    def half_open_max_calls(self) -> int:
        """Trial calls admitted while half-open, and successes needed to close."""
        return self._half_open_max

    @property
    def excluded_exceptions(self) -> tuple[type[BaseException], ...]:
        """Exception types that count as neither success nor failure."""
        return self._excluded

    @property
    def state(self) -> CircuitState:
        """The current state, taking the time spent open into account."""
        return STATE_BY_CODE[self._state_code()]

    @property
    def is_open(self) -> bool:
        """True while calls are rejected for the reset timeout."""
        return self._state_code() == OPEN

    @property
    def is_closed(self) -> bool:
        """True while calls pass freely."""
        return self._state == CLOSED

    def get_time_until_reset(self) -> float:
        """Seconds until an open breaker admits trial calls; ``0.0`` in any other state."""
        if self._state != OPEN:
            return 0.0
        return max(0.0, self._reset_timeout - (self._clock() - self._opened_at))

    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the state, the counts and the lifetime totals.

        Example::

            >>> breaker.get_stats()["state"]
            'closed'
        """
        time_until_reset = self.get_time_until_reset()
        state = self._state_code()
        with self._lock:
            successes = self._successes
            failures = self._failures
            ignored = self._ignored
            stats = {
                "name": self._name,
                "state": STATE_BY_CODE[state].value,
                "failure_count": self._failure_count,
                "success_count": self._trial_successes,
                "half_open_calls": self._trials if self._state == HALF_OPEN else 0,
                "time_until_reset": time_until_reset,
                "calls": successes + failures + ignored,
                "successes": successes,
                "failures": failures,
                "rejections": self._rejections,
                "ignored": ignored,
                "opened": self._opened,
                "failure_threshold": self._threshold,
                "reset_timeout": self._reset_timeout,
                "half_open_max_calls": self._half_open_max,
            }
        return stats

    # -- changing it by hand ----------------------------------------------

    def reset(self) -> None:
        """Close the breaker and clear its failure and trial counts.

        Lifetime totals (``calls``, ``failures``, ...) are kept, so metrics
        exported from them never go backwards. Calls still running from before
        the reset cannot move the new state.
        """
        with self._lock:
            old = self._state
            self._state = CLOSED
            self._epoch += 1
            self._failure_count = 0
            self._trials = 0
            self._trial_successes = 0
        if old != CLOSED:
            self._notify(old, CLOSED)

    def record_success(self) -> None:
        """Record a success of a call made without the breaker's help."""
        self._on_success(self._epoch)

    def record_failure(self, exception: BaseException) -> None:
        """Record a failure; an exception of an excluded type is counted as ignored."""
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if isinstance(exception, self._excluded):
            with self._lock:
                self._ignored += 1
        elif isinstance(exception, Exception):
            self._on_failure(self._epoch)

    def add_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Call ``callback(breaker, old_state, new_state)`` after every state change."""
        _validate.callable_arg("callback", callback)
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Stop calling ``callback``; a :class:`ValueError` if it was not added."""
        self._listeners.remove(callback)

    # -- using it -----------------------------------------------------------

    def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` through the breaker.

        For an ``async def`` function the admission happens now and the
        returned awaitable settles the outcome when it completes.
        """
        epoch = self._admit()
        if epoch < 0:
            raise self._rejection()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._on_exception(exc, epoch)
            raise
        if type(result) is types.CoroutineType:
            guard = _TrialSlot(self, epoch) if self._state == HALF_OPEN else None
            return _settle_later(self, result, epoch, guard)
        self._on_success(epoch)
        return result

    def __call__(self, func: Callable[P, R]) -> ProtectedCallable[P, R]:
        """Decorate ``func`` so that every call goes through the breaker."""
        return protect(self, func)

    def __enter__(self) -> CircuitBreaker:
        epoch = self._admit()
        if epoch < 0:
            raise self._rejection()
        _blocks.push(self, epoch)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        epoch = _blocks.pop(self)
        if exc is None:
            self._on_success(epoch)
        else:
            self._on_exception(exc, epoch)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self._name!r} {STATE_BY_CODE[self._state_code()].value}>"


class _TrialSlot:
    """Gives a half-open trial slot back if its call is dropped before it starts.

    ``call()`` admits an async call at once; if the awaitable it returns is
    never awaited, the coroutine is discarded without running, and this guard
    (one of its arguments) goes with it.
    """

    __slots__ = ("breaker", "epoch")

    def __init__(self, breaker: CircuitBreaker, epoch: int) -> None:
        self.breaker: CircuitBreaker | None = breaker
        self.epoch = epoch

    def disarm(self) -> None:
        self.breaker = None

    def __del__(self) -> None:
        if self.breaker is not None:
            self.breaker._on_exception(GeneratorExit(), self.epoch)


async def _settle_later(breaker: CircuitBreaker, coro: Any, epoch: int, guard: _TrialSlot | None) -> Any:
    try:
        result = await coro
    except BaseException as exc:
        if guard is not None:
            guard.disarm()
        breaker._on_exception(exc, epoch)
        raise
    if guard is not None:
        guard.disarm()
    breaker._on_success(epoch)
    return result


def protect(
    breaker: CircuitBreaker,
    func: Callable[P, R],
    fallback: Callable[..., Any] | None = None,
) -> ProtectedCallable[P, R]:
    """Wrap ``func`` so that every call goes through ``breaker``.

    A rejected call returns ``fallback(*args, **kwargs)`` (awaited when the
    fallback is async) when one is given, else raises ``CircuitOpenError``.
    """
    _validate.callable_arg("func", func)
    b = breaker
    unlocked_count = _GIL_ENABLED
    if _wrapping.is_async_callable(func):
        fallback_is_async = fallback is not None and _wrapping.is_async_callable(fallback)
        async_func = cast("Callable[..., Awaitable[Any]]", func)

        async def protected_async(*args: Any, **kwargs: Any) -> Any:
            if b._state:
                epoch = b._admit()
                if epoch < 0:
                    if fallback is None:
                        raise b._rejection()
                    if fallback_is_async:
                        return await fallback(*args, **kwargs)
                    return fallback(*args, **kwargs)
            else:
                epoch = b._epoch
            try:
                result = await async_func(*args, **kwargs)
            except BaseException as exc:
                b._on_exception(exc, epoch)
                raise
            if b._state or b._failure_count or not unlocked_count:
                b._on_success(epoch)
            else:
                b._successes += 1
            return result

        wrapper = _wrapping.copy_metadata(protected_async, func, is_async=True)
        wrapper.breaker = breaker
        return wrapper  # type: ignore[no-any-return]

    def protected(*args: Any, **kwargs: Any) -> Any:
        if b._state:
            epoch = b._admit()
            if epoch < 0:
                if fallback is None:
                    raise b._rejection()
                return fallback(*args, **kwargs)
        else:
            epoch = b._epoch
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            b._on_exception(exc, epoch)
            raise
        # The closed-state success needs no lock under the GIL: adding one to
        # an int attribute runs no Python code, so it cannot be interleaved.
        if b._state or b._failure_count or not unlocked_count:
            b._on_success(epoch)
        else:
            b._successes += 1
        return result

    wrapper = _wrapping.copy_metadata(protected, func, is_async=False)
    wrapper.breaker = breaker
    return wrapper  # type: ignore[no-any-return]
