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

import math
import random as _random
import sys
import threading
import time
import types
from collections.abc import Awaitable, Callable
from typing import Any, cast

from . import _blocks, _chain, _deadlines, _events, _live, _sleep, _timeout_log, _validate, _wrapping
from ._types import P, ProtectedCallable, R
from .errors import CircuitOpenError
from .jitter import Jitter
from .state import CLOSED, HALF_OPEN, OPEN, STATE_BY_CODE, CircuitState

__all__ = ["IMPLEMENTATION", "CircuitBreaker", "RetryConfig", "chain", "protect", "retrying", "timed"]

IMPLEMENTATION = "py"

# The closed-state success count is bumped without a lock where the GIL makes
# that atomic; a free-threaded interpreter takes the lock instead.
_GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
_monotonic = time.monotonic


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
        "__weakref__",
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
        "_store",
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
        store: Any = None,
    ) -> None:
        if getattr(self, "_name", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        (
            name,
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
        self._store: Any = None
        self._name = name
        if store is not None:
            self._store = _validate.breaker_store(store).bind(self)
        _live.track(self)

    def __reduce__(self) -> Any:
        raise TypeError(_validate.UNPICKLABLE_BREAKER.format(breaker=self))

    # -- the state machine ------------------------------------------------
    # No user code (a clock, a listener, the store) may leave a trial slot
    # held or a transition half-done: every admission that then fails gives
    # its slot back, and state changes happen before listeners are told.

    def _now(self) -> float:
        """The clock; an error for a reading that is not a finite number (as the compiled core)."""
        now = self._clock()
        if type(now) is not float or not math.isfinite(now):
            now = _validate.clock_reading(self._clock, now)
        return now

    def _admit(self, shared: bool = True) -> int:
        if self._state == CLOSED:
            return self._epoch
        now = self._now()  # user code: read before the critical section
        changed = False
        store: Any = self._store if shared else None
        with self._lock:
            state = self._state
            if state == CLOSED:
                return self._epoch
            if state == OPEN and now - self._opened_at < self._reset_timeout:
                self._rejections += 1
                return -1
            if store is not None and (state == OPEN or self._trials < self._half_open_max):
                epoch = -3  # trial permits are cluster-wide: the store grants them
            else:
                if state == OPEN:
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
        if epoch == -3:
            return cast(int, store.admit(0))
        if changed:
            try:
                self._notify(OPEN, HALF_OPEN)
            except BaseException:
                # A listener raised (an interrupt: others are logged) before
                # the call could start: its trial slot must not stay taken.
                if epoch >= 0:
                    self._release(epoch, ignored=False)
                raise
        return epoch

    def _promote(self) -> None:
        """An open breaker past its reset timeout is half-open: make it so (for manual recording)."""
        if self._state != OPEN or self._store is not None:
            return
        now = self._now()
        with self._lock:
            if self._state != OPEN or now - self._opened_at < self._reset_timeout:
                return
            self._state = HALF_OPEN
            self._trials = 0
            self._trial_successes = 0
        self._notify(OPEN, HALF_OPEN)

    def _open(self, now: float) -> None:
        # Caller holds the lock.
        self._state = OPEN
        self._epoch += 1
        self._opened_at = now
        self._trials = 0
        self._trial_successes = 0
        self._opened += 1

    def _on_success(self, epoch: int, shared: bool = True, count: bool = True) -> None:
        closed = False
        store = self._store if shared else None
        call = None
        with self._lock:
            if count:
                self._successes += 1
            if epoch == self._epoch:
                if self._state == CLOSED:
                    if store is not None and self._failure_count:
                        call = store.clear
                    self._failure_count = 0
                elif store is not None and self._state == HALF_OPEN:
                    call = store.trial_success
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
        elif call is not None:
            call(epoch)

    def _on_failure(self, epoch: int, shared: bool = True, count: bool = True) -> None:
        try:
            now = self._now()
        except BaseException:
            # No reading to open the breaker with: count the failure, and give
            # a trial slot back so the breaker cannot stay half-open for ever.
            with self._lock:
                if count:
                    self._failures += 1
            self._release(epoch, ignored=False)
            raise
        old = -1
        store: Any = self._store if shared else None
        report = False
        with self._lock:
            if count:
                self._failures += 1
            if epoch == self._epoch and store is not None:
                report = True
            elif epoch == self._epoch:
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
        elif report:
            store.failure(epoch)

    def _on_exception(self, exc: BaseException, epoch: int) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, self._excluded):
            self._on_failure(epoch)
        else:
            # Interrupted or cancelled: not an outcome, but a trial slot it
            # held must come back or the breaker would stay half-open forever.
            self._release(epoch, ignored=isinstance(exc, Exception))

    def _release(self, epoch: int, ignored: bool) -> None:
        shared = False
        with self._lock:
            if ignored:
                self._ignored += 1
            if epoch == self._epoch and self._state == HALF_OPEN and self._trials > 0:
                self._trials -= 1
                shared = self._store is not None
        if shared:
            # Never blocks (the store queues it), so a deallocator may call it.
            self._store.release(epoch)

    def _rejection(self) -> CircuitOpenError:
        return CircuitOpenError(self._name, self.get_time_until_reset())

    def _notify(self, old: int, new: int) -> None:
        if self._listeners:
            _events.notify(self, self._listeners, old, new)

    # -- reading the breaker ----------------------------------------------

    def _state_code(self) -> int:
        state = self._state
        if state == OPEN and self._now() - self._opened_at >= self._reset_timeout:
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
    def store(self) -> Any:
        """The store that shares this breaker's state between processes, or ``None``."""
        return None if self._store is None else self._store.store

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
        return max(0.0, self._reset_timeout - (self._now() - self._opened_at))

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
        the reset cannot move the new state. A shared breaker resets the
        shared state too.
        """
        if self._store is not None:
            self._store.reset()
        else:
            self._local_reset()

    def _local_reset(self) -> None:
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
        """Record a success of a call made without the breaker's help.

        It counts in the state the breaker is in now: past the reset timeout
        an open breaker is half-open, and the success counts towards closing.
        """
        self._promote()
        self._on_success(self._epoch)

    def record_failure(self, exception: BaseException) -> None:
        """Record a failure; an exception of an excluded type is counted as ignored.

        Past the reset timeout an open breaker is half-open, and the failure
        opens it again for a full ``reset_timeout``.
        """
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if isinstance(exception, self._excluded):
            with self._lock:
                self._ignored += 1
        elif isinstance(exception, Exception):
            self._promote()
            self._on_failure(self._epoch)

    def add_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Call ``callback(breaker, old_state, new_state)`` after every state change."""
        _validate.callable_arg("callback", callback)
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Any, CircuitState, CircuitState], object]) -> None:
        """Stop calling ``callback``; a :class:`ValueError` if it was not added."""
        if callback not in self._listeners:
            raise ValueError(_validate.NOT_A_LISTENER.format(callback=callback, breaker=self))
        self._listeners.remove(callback)

    # -- using it -----------------------------------------------------------

    def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` through the breaker.

        For an ``async def`` function the admission happens now and the
        returned awaitable settles the outcome when it completes.
        """
        _validate.callable_arg("func", func)
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
        try:
            _blocks.push(self, epoch)
        except BaseException:
            self._release(epoch, ignored=False)
            raise
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
        if getattr(self, "_name", None) is None:
            return f"<{type(self).__name__} (not initialised)>"
        state = self._state
        if state == OPEN:
            try:
                if self._now() - self._opened_at >= self._reset_timeout:
                    state = HALF_OPEN
            except Exception:
                pass
        return f"<{type(self).__name__} {self._name!r} {STATE_BY_CODE[state].value}>"

    # -- for the store's binding (hardy.store) ------------------------------

    def _current_epoch(self) -> int:
        return self._epoch

    def _local_admit(self) -> int:
        return self._admit(shared=False)

    def _local_success(self, epoch: int) -> None:
        """The local transition for a success the breaker has already counted."""
        self._on_success(epoch, shared=False, count=False)

    def _local_failure(self, epoch: int) -> None:
        """The local transition for a failure the breaker has already counted."""
        self._on_failure(epoch, shared=False, count=False)

    def _count_rejection(self) -> None:
        with self._lock:
            self._rejections += 1

    def _adopt(
        self, state: int, failure_count: int, trials: int, trial_successes: int, open_elapsed: float, new_period: bool
    ) -> int:
        """Take a state read from the store; the new epoch. ``new_period``: calls running now are stale."""
        now = self._now()
        with self._lock:
            old = self._state
            if new_period:
                self._epoch += 1
                if state == OPEN and old != OPEN:
                    self._opened += 1
            self._state = state
            self._failure_count = failure_count
            self._trials = trials
            self._trial_successes = trial_successes
            if state != CLOSED:
                self._opened_at = now - open_elapsed
            epoch = self._epoch
        if old != state:
            self._notify(old, state)
        return epoch


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
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, got {breaker!r}")
    _validate.initialised(breaker, getattr(breaker, "_name", None) is not None)
    _validate.callable_arg("func", func)
    if fallback is not None:
        _validate.callable_arg("fallback", fallback)
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


# -- retry ------------------------------------------------------------------------

_JITTER_NONE, _JITTER_FULL, _JITTER_EQUAL, _JITTER_DECORRELATED = range(4)


class RetryConfig:
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

    __slots__ = (
        "__weakref__",
        "_clock",
        "_deadline",
        "_factor",
        "_initial",
        "_jitter",
        "_jitter_given",
        "_max_attempts",
        "_max_delay",
        "_random",
        "_retry_circuit_open",
        "_retry_on_result",
        "_retryable",
    )

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
        (
            self._max_attempts,
            self._factor,
            self._initial,
            self._max_delay,
            self._jitter,
            self._retryable,
            self._retry_circuit_open,
            self._retry_on_result,
            self._deadline,
            self._random,
            self._clock,
        ) = _validate.retry_settings(
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
        self._jitter_given = jitter

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
        return self._deadline

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
        # Kept operation for operation identical to the compiled core, so
        # both give bit-identical delays for the same random numbers.
        maximum = self._max_delay
        if self._initial == 0.0:
            base = 0.0
        else:
            try:
                base = self._initial * self._factor ** (attempt - 1)
            except OverflowError:
                base = math.inf
        if not base < maximum:
            base = maximum
        jitter = self._jitter
        if jitter == _JITTER_NONE:
            delay = base
        elif jitter == _JITTER_FULL:
            delay = self._draw() * base
        elif jitter == _JITTER_EQUAL:
            half = base * 0.5
            delay = half + self._draw() * half
        else:
            low = self._initial
            high = 3.0 * (previous if previous >= 0.0 else low)
            if high < low:
                high = low
            delay = low + self._draw() * (high - low)
        if not delay >= 0.0:
            delay = 0.0
        if delay > maximum:
            delay = maximum
        return delay

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
            "deadline": self._deadline,
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
    deadline = c._deadline
    clock = c._clock
    max_attempts = c._max_attempts
    if _wrapping.is_async_callable(func):
        async_func = cast("Callable[..., Awaitable[Any]]", func)
        on_retry_is_async = on_retry is not None and _wrapping.is_async_callable(on_retry)

        async def retried_async(*args: Any, **kwargs: Any) -> Any:
            started = clock() if deadline is not None else 0.0
            attempt = 1
            previous = -1.0
            while True:
                try:
                    result = await async_func(*args, **kwargs)
                except Exception as exc:
                    if attempt >= max_attempts or not c._retries(exc):
                        raise
                    delay = c._delay(attempt, previous)
                    if deadline is not None and clock() - started + delay > deadline:
                        raise
                    if on_retry is not None:
                        if on_retry_is_async:
                            await on_retry(exc, attempt)  # type: ignore[misc]
                        else:
                            on_retry(exc, attempt)
                    if delay > 0.0:
                        await _sleep.async_sleep(delay)
                else:
                    if retry_on_result is None or not retry_on_result(result) or attempt >= max_attempts:
                        return result
                    delay = c._delay(attempt, previous)
                    if deadline is not None and clock() - started + delay > deadline:
                        return result
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
        started = clock() if deadline is not None else 0.0
        attempt = 1
        previous = -1.0
        while True:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                if attempt >= max_attempts or not c._retries(exc):
                    raise
                delay = c._delay(attempt, previous)
                if deadline is not None and clock() - started + delay > deadline:
                    raise
                if on_retry is not None:
                    on_retry(exc, attempt)
                if delay > 0.0:
                    _sleep.sync_sleep(delay)
            else:
                if retry_on_result is None or not retry_on_result(result) or attempt >= max_attempts:
                    return result
                delay = c._delay(attempt, previous)
                if deadline is not None and clock() - started + delay > deadline:
                    return result
                if on_retry is not None:
                    on_retry(None, attempt)
                if delay > 0.0:
                    _sleep.sync_sleep(delay)
            previous = delay
            attempt += 1

    wrapper = _wrapping.copy_metadata(retried, func, is_async=False)
    wrapper.retry_config = config
    return wrapper  # type: ignore[no-any-return]


# -- fallback chains -------------------------------------------------------------------


def chain(
    name: str,
    funcs: tuple[Callable[..., Any], ...],
    default: object,
    exceptions: tuple[type[Exception], ...],
    log: bool,
) -> Callable[..., Any]:
    """Call ``funcs[0]``; when it raises one of ``exceptions``, the next, and so on.

    When all fail: ``default`` unless it is ``NO_DEFAULT``, else
    ``AllFallbacksFailedError``. The result is async when any function is
    (a sync primary may have async fallbacks); an async chain awaits its
    async functions and calls its sync ones.
    """
    first = funcs[0]
    awaited = tuple(_wrapping.is_async_callable(func) for func in funcs)
    if any(awaited):

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await _chain.run_chain_async(name, funcs, awaited, args, kwargs, default, exceptions, log)

        return _wrapping.copy_metadata(run_async, first, is_async=True)  # type: ignore[no-any-return]

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return first(*args, **kwargs)
        except exceptions as exc:
            errors: list[BaseException] = [exc]
        return _chain.continue_chain(name, funcs, 1, args, kwargs, errors, default, exceptions, log)

    return _wrapping.copy_metadata(run, first, is_async=False)  # type: ignore[no-any-return]


# -- sync deadlines ----------------------------------------------------------------------


def timed(
    func: Callable[P, R],
    seconds: float,
    operation: str,
    fallback: Callable[..., Any] | None = None,
) -> Callable[P, R]:
    """Run each call of the sync ``func`` under a deadline of ``seconds``.

    At the deadline the call is interrupted and ``hardy.TimeoutError(operation,
    seconds)`` raised, or ``fallback(*args, **kwargs)`` returned. A call that
    returns after its deadline (the timer could not interrupt it) times out
    all the same: its result is dropped.
    """

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        entry = _deadlines.prepare(seconds)
        try:
            try:
                _deadlines.enter(entry)
                result = func(*args, **kwargs)
                late = _monotonic() >= entry.deadline
            finally:
                _deadlines.leave(entry)
        except _deadlines.Expired:
            # Make sure ours is gone even if the delivery interrupted leave()
            # itself; then it is ours, unless it came for an outer deadline
            # (re-raised for that one's own wrapper).
            _leave_surely(entry)
            if not (entry.fired or _monotonic() >= entry.deadline) and _deadlines.claimed_elsewhere(entry):
                raise
        else:
            if not late:
                return result
        error = _timeout_log.timed_out(operation, seconds)
        if fallback is None:
            raise error
        value = fallback(*args, **kwargs)
        _timeout_log.fallback_answered(operation)
        return value

    return _wrapping.copy_metadata(timed_call, func, is_async=False)  # type: ignore[no-any-return]


def _leave_surely(entry: _deadlines.Entry) -> None:
    for _ in range(3):
        try:
            _deadlines.leave(entry)
            return
        except _deadlines.Expired:
            continue
