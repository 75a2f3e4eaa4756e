"""The circuit breaker's dispatch in the twin (the compiled one is ``hardy/_c/breaker.pxi``).

Each method takes the lock around one transition of
:mod:`hardy.policies.breaker`, then does what it asked with the lock
released: tell the listeners about the event it left, or hand the outcome to
the store's binding. No user code (a clock, a listener, the store) may leave
a trial slot held or a transition half-done: an admission that then fails
gives its slot back.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, cast

from .. import _blocks, _descriptors, _events, _live, _match, _rejections, _validate, events
from .. import window as _window
from ..errors import CircuitOpenError
from ..policies import breaker as policy
from ..policies.breaker import (
    ASK_STORE,
    CLOSED,
    DISABLED,
    FLAG_RESULT,
    FLAG_SLOW,
    FLAG_TIMED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    REJECTED,
    BreakerState,
    BreakerTuning,
)
from ..state import STATE_BY_CODE, CircuitState

if TYPE_CHECKING:
    from .._types import P, ProtectedCallable, R
    from ..store import BreakerStore, SharedBreaker

__all__ = ["GIL_ENABLED", "CircuitBreaker"]

_WINDOW_SETTINGS = _window.SettingsCache()

# The closed-state success count is bumped without a lock where the GIL makes
# that atomic; a free-threaded interpreter takes the lock instead.
GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

# The start of a call whose duration is not measured.
_NAN = math.nan

# What an exception raised by a protected call counts as (CircuitBreaker._classify).
_FAILURE, _IGNORED, _SUCCESS = 0, 1, 2

# hardy._rejections.rejected while a subscriber wants "rejection" events, else None.
_rejection_hook: Callable[[Any, Any], None] | None = None


def _watch_rejections(wanted: frozenset[str]) -> None:
    global _rejection_hook
    _rejection_hook = _rejections.hook_for(wanted)


events.watch(_watch_rejections)


class CircuitBreaker(BreakerState):
    """A circuit breaker: stop calling a dependency that keeps failing.

    CLOSED lets calls through and counts consecutive failures; at
    ``failure_threshold`` it opens. OPEN rejects calls at once with
    :class:`~hardy.CircuitOpenError` for ``reset_timeout`` seconds, then turns
    HALF_OPEN, which admits at most ``half_open_max_calls`` trial calls: when
    that many have succeeded it closes, and any trial failure opens it again.
    Exceptions of the ``excluded_exceptions`` types count as neither success
    nor failure. With ``window=`` (a :class:`~hardy.CountWindow` or
    :class:`~hardy.TimeWindow`) a closed breaker opens on a failure or
    slow-call rate instead of consecutive failures. ``clock`` returns
    monotonic seconds and may be replaced in tests.

    Example::

        breaker = hardy.CircuitBreaker("payments", failure_threshold=3, reset_timeout=10)
        by_rate = hardy.CircuitBreaker("search", window=hardy.CountWindow(size=100, failure_rate=0.5))

        @breaker
        def charge(order_id: int) -> str: ...

        with breaker:
            legacy_charge()
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_excluded",
        "_excluded_classes",
        "_excluded_preds",
        "_failure_classes",
        "_failure_preds",
        "_failures_spec",
        "_last_failure",
        "_listeners",
        "_lock",
        "_name",
        "_result_predicate",
        "_store",
    )

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        excluded_exceptions: Any = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        store: BreakerStore | None = None,
        failure_exceptions: Any = None,
        failure_on_result: Callable[[Any], object] | None = None,
        success_threshold: int | None = None,
        half_open_max_wait: float | None = None,
        reset_backoff: float = 1.0,
        max_reset_timeout: float | None = None,
        window: _window.CountWindow | _window.TimeWindow | None = None,
    ) -> None:
        if getattr(self, "_name", None) is not None:
            raise RuntimeError(_validate.ALREADY_INITIALISED.format(kind=type(self).__name__, obj=self))
        settings = _validate.breaker_settings(
            name,
            failure_threshold,
            reset_timeout,
            half_open_max_calls,
            excluded_exceptions,
            clock,
            failure_exceptions=failure_exceptions,
            failure_on_result=failure_on_result,
            success_threshold=success_threshold,
            half_open_max_wait=half_open_max_wait,
            reset_backoff=reset_backoff,
            max_reset_timeout=max_reset_timeout,
            window=window,
        )
        policy.configure_breaker(self, settings.failure_threshold, settings.reset_timeout, settings.half_open_max_calls)
        if settings.tuned:
            policy.tune_breaker(
                self,
                BreakerTuning(),
                settings.success_threshold,
                settings.reset_backoff,
                settings.max_reset_timeout,
                settings.half_open_max_wait,
            )
        self._last_failure: BaseException | None = None
        self._clock = settings.clock
        self._excluded = settings.excluded_exceptions
        if self._excluded and self._tuning is None:
            # Its ignored calls are counted in a tuning (untuned: it changes no decision), as compiled.
            policy.tune_breaker(self, BreakerTuning(), 0, 1.0, _validate.NO_CAP, 0.0)
        self._excluded_classes = _match.classes_of(self._excluded)
        self._excluded_preds = _match.has_predicates(self._excluded)
        self._failures_spec = settings.failure_exceptions
        spec = () if self._failures_spec is None else self._failures_spec
        self._failure_classes = _match.classes_of(spec)
        self._failure_preds = _match.has_predicates(spec)
        self._result_predicate = settings.failure_on_result
        if self._result_predicate is not None:
            self._flags |= FLAG_RESULT
        if settings.window is not None:
            decides_by = _WINDOW_SETTINGS.get(settings.window, policy.new_window_settings)
            policy.attach_window(self, policy.new_window(decides_by))
        self._listeners: list[Callable[..., Any]] = []
        self._lock = threading.Lock()
        self._store: SharedBreaker | None = None
        self._name = settings.name
        if store is not None:
            # A windowed breaker shares its window's verdicts, not its consecutive failures.
            view = self if settings.window is None else _window.SharedView(self, settings)
            self._store = _validate.breaker_store(store).bind(view, _Local(self))
        _live.track(self)

    def __reduce__(self) -> Any:
        raise TypeError(_validate.UNPICKLABLE_BREAKER.format(breaker=self))

    # -- the dispatch around the state machine ------------------------------

    def _now(self) -> float:
        """The clock; an error for a reading that is not a finite number (as the compiled core)."""
        now = self._clock()
        if type(now) is not float or not math.isfinite(now):
            now = _validate.clock_reading(self._clock, now)
        return now

    def _admit(self, shared: bool = True) -> int:
        """The epoch of an admitted call, or REJECTED after counting a rejection."""
        if self._state == CLOSED:
            return self._epoch
        # User code: read before the critical section; a manual state needs no reading.
        now = self._now() if policy.needs_clock(self) else 0.0
        with self._lock:
            epoch = policy.admit(self, now, shared and self._store is not None)
            code = policy.take_event(self)
        if epoch == ASK_STORE:
            # The policy asks the store only when told there is one.
            return int(cast("SharedBreaker", self._store).admit())
        if code:
            if policy.event_new(code) == OPEN:
                self._last_failure = None  # trials overdue (half_open_max_wait): no exception did it
            try:
                self._notify(code)
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
            policy.promote(self, now)
            code = policy.take_event(self)
        if code:
            self._notify(code)

    def _call_start(self, epoch: int) -> float:
        """The start of an admitted call whose duration is measured; on error its slot comes back."""
        try:
            return self._now()
        except BaseException:
            self._release(epoch, ignored=False)
            raise

    def _on_success(
        self, epoch: int, shared: bool = True, count: bool = True, start: float = _NAN, known_slow: bool = False
    ) -> None:
        """Settle a success (``known_slow``: a store's echo of a slow one, whose time was not measured)."""
        now = _NAN
        slow = known_slow
        if count and self._flags & FLAG_TIMED:
            # The window needs the time of the outcome (a time window, or slow calls).
            try:
                now = self._now()
            except BaseException:
                with self._lock:
                    self._successes += 1
                self._release(epoch, ignored=False)
                raise
            slow = policy.slow_call(self, start, now)
        shared = shared and self._store is not None
        while True:
            with self._lock:
                action = policy.settle_success_at(self, epoch, now, slow, shared, count)
                code = policy.take_event(self)
            if action != policy.NEEDS_TIME:
                break
            try:
                now = self._now()
            except BaseException:  # nothing was settled: count it, and give the trial's slot back
                with self._lock:
                    if count:
                        self._successes += 1
                self._release(epoch, ignored=False)
                raise
        if code:
            if policy.event_new(code) == OPEN:
                self._last_failure = None  # opened by slow calls or a rate a success completed
            self._notify(code)
        elif action == policy.OPEN_PENDING:
            self._open_pending(epoch, None)
        elif action != policy.DONE:
            self._binding_settle(action, epoch, slow)

    def _open_pending(self, epoch: int, exc: BaseException | None) -> None:
        """An outcome (the failure ``exc``; None: a success) completed the window's verdict without a
        reading of the time: open now."""
        now = self._now()
        with self._lock:
            policy.open_by_window(self, epoch, now)
            code = policy.take_event(self)
        if code:
            self._last_failure = exc
            self._notify(code)

    def _on_failure(
        self,
        epoch: int,
        shared: bool = True,
        count: bool = True,
        exc: BaseException | None = None,
        start: float = _NAN,
        known_slow: bool = False,
    ) -> None:
        """Settle a failure (``known_slow``: a store's echo of a slow one, whose time was not measured)."""
        now = _NAN
        slow = known_slow
        read = policy.failure_reads_clock(self)
        shared = shared and self._store is not None
        while True:
            if read:
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
                slow = known_slow or policy.slow_call(self, start, now)
            with self._lock:
                action = policy.settle_failure_at(self, epoch, now, slow, shared, count)
                code = policy.take_event(self)
            if action != policy.NEEDS_TIME:
                break
            read = True
        if code:
            if policy.event_new(code) == OPEN:
                self._last_failure = exc
            self._notify(code)
        elif action == policy.OPEN_PENDING:
            self._open_pending(epoch, exc)
        elif action != policy.DONE:
            self._binding_settle(action, epoch, slow)

    def _binding_settle(self, action: int, epoch: int, slow: bool) -> None:
        """Hand a settling the policy left to the store to the store's binding (``slow``: the call was)."""
        store = cast("SharedBreaker", self._store)  # the policy leaves a settling to a store only if there is one
        if action == policy.STORE_FAILURE:
            store.failure(epoch, slow)
        elif action == policy.STORE_TRIAL_SUCCESS:
            store.trial_success(epoch, slow)
        else:
            store.clear(epoch)

    def _classify(self, exc: BaseException) -> int:
        """What an ``Exception`` a call raised counts as; a predicate's error propagates.

        Classes first, then predicates (hardy._match), as the compiled core.
        """
        if isinstance(exc, self._excluded_classes):
            return _IGNORED
        if self._excluded_preds and _match.predicates_match(exc, self._excluded, "excluded_exceptions", self):
            return _IGNORED
        if self._failures_spec is None or isinstance(exc, self._failure_classes):
            return _FAILURE
        if self._failure_preds and _match.predicates_match(exc, self._failures_spec, "failure_exceptions", self):
            return _FAILURE
        return _SUCCESS

    def _on_exception(self, exc: BaseException, epoch: int, start: float = _NAN) -> None:
        if not isinstance(exc, Exception):
            # Interrupted or cancelled: not an outcome, but a trial slot it
            # held must come back or the breaker would stay half-open forever.
            self._release(epoch, ignored=False)
            return
        try:
            kind = self._classify(exc)
        except BaseException:
            self._release(epoch, ignored=False)
            raise
        if kind == _IGNORED:
            self._release(epoch, ignored=True)
        elif kind == _SUCCESS:
            self._on_success(epoch, start=start)
        else:
            self._on_failure(epoch, exc=exc, start=start)

    def _on_result(self, epoch: int, value: object, start: float = _NAN) -> None:
        """Settle a call started at ``start`` (NaN: not measured) that returned ``value``: a success, or a
        failure if ``failure_on_result`` says so."""
        if self._result_predicate is None:
            self._on_success(epoch, start=start)
            return
        try:
            failed = _match.result_matches(self._result_predicate, value, "failure_on_result", self)
        except BaseException:
            # Not an outcome: the trial slot the call held comes back.
            self._release(epoch, ignored=False)
            raise
        if failed:
            self._on_failure(epoch, start=start)  # no exception: last_failure becomes None if this opens
        else:
            self._on_success(epoch, start=start)

    def _release(self, epoch: int, ignored: bool) -> None:
        with self._lock:
            held = policy.release(self, epoch, ignored)
        if held and self._store is not None:
            # Never blocks (the store queues it), so a deallocator may call it.
            self._store.release(epoch)

    def _steer(self, state: int) -> None:
        with self._lock:
            policy.steer(self, state)
            code = policy.take_event(self)
        if state == FORCED_OPEN:
            self._last_failure = None
        if code:
            self._notify(code)

    def _reset_locally(self) -> None:
        with self._lock:
            policy.reset(self)
            code = policy.take_event(self)
        if code:
            self._notify(code)

    def _rejection(self) -> CircuitOpenError:
        error = CircuitOpenError(self._name, self.get_time_until_reset(), self._last_failure)
        hook = _rejection_hook
        if hook is not None:
            hook(self, error)
        return error

    def _notify(self, code: int) -> None:
        """Tell the listeners, hardy.events and the log about transition ``code`` (hardy.policies.breaker.event)."""
        _events.notify(self, self._listeners, policy.event_old(code), policy.event_new(code))

    def _state_code(self) -> int:
        if self._state == OPEN:
            return policy.effective_state(self, self._now())
        return self._state

    # -- reading the breaker ----------------------------------------------

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
        """Seconds the breaker stays open before admitting trial calls (before any backoff)."""
        return policy.base_timeout(self)

    @property
    def success_threshold(self) -> int:
        """Trial successes that close a half-open breaker (all ``half_open_max_calls`` unless given).

        A breaker with a window and no ``success_threshold`` given judges its
        trials by the window's rates instead (``docs/circuit-breaker.md``).
        """
        return policy.success_threshold_of(self)

    @property
    def _trials_by_rate(self) -> bool:
        """Whether a window's rates judge the half-open trials (no success_threshold given)."""
        return bool(policy.trials_by_rate(self))

    @property
    def half_open_max_wait(self) -> float | None:
        """Seconds after which trials that hold every slot count as a failure; ``None``: no limit."""
        if self._tuning is None or self._tuning._max_wait == 0.0:
            return None
        return self._tuning._max_wait

    @property
    def reset_backoff(self) -> float:
        """What the reset timeout is multiplied by each time a half-open period fails."""
        return 1.0 if self._tuning is None else self._tuning._backoff

    @property
    def max_reset_timeout(self) -> float | None:
        """The cap of the backed-off reset timeout; ``None``: no cap."""
        if self._tuning is None or self._tuning._max_timeout == _validate.NO_CAP:
            return None
        return self._tuning._max_timeout

    @property
    def last_failure(self) -> BaseException | None:
        """The exception that last opened the circuit, or ``None``."""
        return self._last_failure

    @property
    def half_open_max_calls(self) -> int:
        """Trial calls admitted while half-open, and successes needed to close."""
        return self._half_open_max

    @property
    def window(self) -> _window.CountWindow | _window.TimeWindow | None:
        """The :class:`~hardy.CountWindow` or :class:`~hardy.TimeWindow` that decides when it opens, or ``None``."""
        w = policy.window_of(self)
        return cast("_window.CountWindow | _window.TimeWindow", policy.window_spec(w)) if w else None

    @property
    def excluded_exceptions(self) -> tuple[Any, ...]:
        """Exception classes and predicates that count as neither success nor failure."""
        return self._excluded

    @property
    def failure_exceptions(self) -> tuple[Any, ...] | None:
        """The exception classes and predicates that are failures; ``None``: every ``Exception``."""
        return self._failures_spec

    @property
    def failure_on_result(self) -> Callable[[Any], object] | None:
        """The predicate on a returned value that makes it a failure, or ``None``."""
        return self._result_predicate

    @property
    def store(self) -> BreakerStore | None:
        """The store that shares this breaker's state between processes, or ``None``."""
        return None if self._store is None else self._store.store

    @property
    def state(self) -> CircuitState:
        """The current state, taking the time spent open into account."""
        return STATE_BY_CODE[self._state_code()]

    @property
    def is_open(self) -> bool:
        """True while calls are rejected: open for the reset timeout, or forced open."""
        return self._state_code() in (OPEN, FORCED_OPEN)

    @property
    def is_closed(self) -> bool:
        """True while calls pass freely."""
        return self._state == CLOSED

    def get_time_until_reset(self) -> float:
        """Seconds until an open breaker admits trial calls; ``0.0`` in any other state."""
        if self._state != OPEN:
            return 0.0
        return policy.time_until_reset(self, self._now())

    def _counts(self) -> tuple[str, int, int, int, int, int, int]:
        """``(name, state code, successes, failures, ignored, rejections, opened)``, for hardy.metrics."""
        state = self._state_code()
        with self._lock:
            ignored = policy.ignored_of(self)
            return (self._name, state, self._successes, self._failures, ignored, self._rejections, self._opened)

    def get_stats(self) -> dict[str, Any]:
        """A snapshot of the state, the counts and the lifetime totals.

        Example::

            >>> breaker.get_stats()["state"]
            'closed'
        """
        time_until_reset = self.get_time_until_reset()
        state = self._state_code()
        with self._lock:
            successes, failures, ignored = self._successes, self._failures, policy.ignored_of(self)
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
                "reset_timeout": policy.base_timeout(self),
                "half_open_max_calls": self._half_open_max,
            }
            w = policy.window_of(self)
            if w:
                policy.window_flush(w)  # the clean outcomes a success only counted
                stats["window_calls"] = policy.window_calls(w)
                stats["window_failures"] = policy.window_failed(w)
                stats["window_slow_calls"] = policy.window_slow(w)
        return stats

    # -- changing it by hand ----------------------------------------------

    def force_open(self) -> None:
        """Reject every call (``CircuitState.FORCED_OPEN``) until :meth:`reset`.

        The process's own decision: with a store, the shared state is left
        alone, and no other process is forced open.
        """
        self._steer(FORCED_OPEN)

    def disable(self) -> None:
        """Admit every call and record nothing (``CircuitState.DISABLED``) until :meth:`reset`."""
        self._steer(DISABLED)

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
            self._reset_locally()

    def record_success(self) -> None:
        """Record a success of a call made without the breaker's help.

        It counts in the state the breaker is in now: past the reset timeout
        an open breaker is half-open, and the success counts towards closing.
        """
        self._promote()
        self._on_success(self._epoch)

    def record_failure(self, exception: BaseException) -> None:
        """Record the outcome of a call that raised ``exception``, made without the breaker's help.

        It is classified as a call's error is: an excluded one is counted as
        ignored, and with ``failure_exceptions`` one that does not match is a
        success. Past the reset timeout an open breaker is half-open, and a
        failure opens it again for a full ``reset_timeout``.
        """
        if not isinstance(exception, BaseException):
            raise TypeError(f"exception must be an exception instance, got {exception!r}")
        if not isinstance(exception, Exception):
            return
        kind = self._classify(exception)
        if kind == _IGNORED:
            with self._lock:
                policy.count_ignored(self)
        elif kind == _SUCCESS:
            self._promote()
            self._on_success(self._epoch)
        else:
            self._promote()
            self._on_failure(self._epoch, exc=exception)

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
        if epoch == REJECTED:
            raise self._rejection()
        start = self._call_start(epoch) if self._flags & FLAG_SLOW else _NAN
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._on_exception(exc, epoch, start)
            raise
        if type(result) is types.CoroutineType:
            # Settled when it completes; it measures no duration (as the compiled awaiter).
            if self._state != HALF_OPEN:
                return _settle_later(self, result, epoch, None)
            guard = _TrialSlot(self, epoch)
            return _TrialCall(_settle_later(self, result, epoch, guard), guard)
        self._on_result(epoch, result, start)
        return result

    def __call__(self, func: Callable[P, R]) -> ProtectedCallable[P, R]:
        """Decorate ``func`` so that every call goes through the breaker (above ``@staticmethod`` too)."""
        from .protect import protect

        rewrapped = _descriptors.rewrap(func, self)
        if rewrapped is not None:
            # A staticmethod/classmethod around the protected function: typed as what it binds to.
            return cast("ProtectedCallable[P, R]", rewrapped)
        return protect(self, func)

    def __enter__(self) -> CircuitBreaker:
        epoch = self._admit()
        if epoch == REJECTED:
            raise self._rejection()
        try:
            _blocks.push(self, epoch)
        except BaseException:
            self._release(epoch, ignored=False)
            raise
        if self._flags & FLAG_SLOW:
            # The block's duration is measured from here to __exit__.
            try:
                _window.push_start(self, self._now())
            except BaseException:
                _blocks.pop(self)
                self._release(epoch, ignored=False)
                raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        epoch = _blocks.pop(self)
        start = _window.pop_start(self) if self._flags & FLAG_SLOW else _NAN
        if exc is None:
            self._on_success(epoch, start=start)
        else:
            self._on_exception(exc, epoch, start)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        if getattr(self, "_name", None) is None:
            return f"<{type(self).__name__} (not initialised)>"
        state = self._state
        if state == OPEN:
            with contextlib.suppress(Exception):  # a clock that fails is reported by the calls, not by repr()
                state = policy.effective_state(self, self._now())
        return f"<{type(self).__name__} {self._name!r} {STATE_BY_CODE[state].value}>"


class _Local:
    """What a store's binding may do to its breaker's local state (hardy.store.LocalState)."""

    __slots__ = ("_breaker",)

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    @property
    def epoch(self) -> int:
        return self._breaker._epoch

    def admit(self) -> int:
        return self._breaker._admit(shared=False)

    def succeed(self, epoch: int, slow: bool = False) -> None:
        self._breaker._on_success(epoch, shared=False, count=False, known_slow=slow)

    def fail(self, epoch: int, slow: bool = False) -> None:
        self._breaker._on_failure(epoch, shared=False, count=False, known_slow=slow)

    def count_rejection(self) -> None:
        b = self._breaker
        with b._lock:
            policy.count_rejection(b)

    def reset(self) -> None:
        self._breaker._reset_locally()

    def adopt(
        self,
        state: int,
        failure_count: int,
        trials: int,
        trial_successes: int,
        open_elapsed: float,
        new_period: bool,
        open_for: float = -1.0,
        trial_slow: int = 0,
    ) -> int:
        b = self._breaker
        now = b._now()
        with b._lock:
            epoch = policy.adopt(
                b, state, failure_count, trials, trial_successes, now - open_elapsed, new_period, open_for, trial_slow
            )
            code = policy.take_event(b)
        if code:
            b._notify(code)
        return int(epoch)


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

    def give_back(self) -> None:
        """The call ends before it started (closed, or thrown into): its slot comes back now."""
        breaker = self.breaker
        if breaker is not None:
            self.breaker = None
            breaker._on_exception(GeneratorExit(), self.epoch)

    def __del__(self) -> None:
        if self.breaker is not None:
            self.breaker._on_exception(GeneratorExit(), self.epoch)


class _TrialCall(Coroutine[Any, Any, Any]):
    """The awaitable ``call()`` returns for an async trial: a coroutine that gives its slot back when it
    is closed or thrown into before it starts, as the compiled core's awaiter does.

    A native coroutine that never started keeps its arguments (here the
    guard) after ``close()`` until it is freed, on 3.12+: the slot would stay
    taken for as long as anyone holds the closed call.
    """

    __slots__ = ("_coro", "_guard")

    def __init__(self, coro: Coroutine[Any, Any, Any], guard: _TrialSlot) -> None:
        self._coro = coro
        self._guard = guard

    def _unstarted(self) -> bool:
        return inspect.getcoroutinestate(self._coro) == inspect.CORO_CREATED

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        if self._unstarted():
            self._guard.give_back()
        return self._coro.throw(*args)

    def close(self) -> None:
        if self._unstarted():
            self._guard.give_back()
        self._coro.close()


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
    breaker._on_result(epoch, result)
    return result
