"""Rate-based windows for circuit breakers: ``CircuitBreaker(..., window=CountWindow(...))``.

Without a window a breaker opens after ``failure_threshold`` consecutive
failures. With one, it opens when, among the calls its window holds (at least
``minimum_calls`` of them), the share of failures reaches ``failure_rate`` or
the share of slow calls (those that took longer than ``slow_call_duration``)
reaches ``slow_call_rate``. The window then replaces the consecutive count, as
resilience4j's sliding window does. ``docs/circuit-breaker.md`` ("Rate-based
windows") has the decisions and each mode's cost.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _validate

if TYPE_CHECKING:
    from ._settings import BreakerSettings
    from .store import BreakerSettingsView  # a breaker: what the view passes on

__all__ = ["CountWindow", "TimeWindow"]


@dataclass(frozen=True, slots=True)
class CountWindow:
    """The last ``size`` calls: opens when, with at least ``minimum_calls`` of them, the failure rate
    (or the slow-call rate) reaches its threshold.

    Rates are fractions of calls in (0, 1]; ``slow_call_duration`` (seconds,
    ``None``: slowness is not tracked) makes a call that took longer slow,
    whether it succeeded or failed.

    Example::

        breaker = hardy.CircuitBreaker("search", window=hardy.CountWindow(size=50, failure_rate=0.25))
    """

    size: int = 100
    failure_rate: float = 0.5
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0

    def __post_init__(self) -> None:
        _normalise(self)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The calls of the last ``seconds`` seconds (one bucket a second on the breaker's clock): opens when,
    with at least ``minimum_calls`` of them, the failure rate (or the slow-call rate) reaches its threshold.

    Example::

        breaker = hardy.CircuitBreaker(
            "search", window=hardy.TimeWindow(seconds=30, failure_rate=0.5, slow_call_duration=2.0)
        )
    """

    seconds: int = 60
    failure_rate: float = 0.5
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0

    def __post_init__(self) -> None:
        _normalise(self)


def _normalise(window: CountWindow | TimeWindow) -> None:
    """Check the fields at construction (the point of the mistake) and keep the rates as floats."""
    _, failure_rate, _, slow, slow_rate = _checked_fields(window)
    object.__setattr__(window, "failure_rate", failure_rate)
    object.__setattr__(window, "slow_call_duration", slow)
    object.__setattr__(window, "slow_call_rate", slow_rate)


def _checked_fields(window: CountWindow | TimeWindow) -> tuple[int, float, int, float | None, float]:
    """The window's fields, checked: ``(span, failure_rate, minimum_calls, slow_call_duration, slow_call_rate)``."""
    if isinstance(window, TimeWindow):
        kind, span_name, span, span_max = "TimeWindow", "seconds", window.seconds, _validate.MAX_WINDOW_SECONDS
    else:
        kind, span_name, span, span_max = "CountWindow", "size", window.size, _validate.MAX_WINDOW_SIZE
    return _validate.window_fields(
        kind,
        span_name,
        span,
        span_max,
        window.failure_rate,
        window.minimum_calls,
        window.slow_call_duration,
        window.slow_call_rate,
    )


class SharedView:
    """What a store reads of a breaker with a window (``hardy.store.BreakerSettingsView``).

    The window is the process's own; what it shares is its verdict. The
    breaker reports a failure to the store only when its window calls for
    opening, so that one report must open the shared circuit: the store sees a
    ``failure_threshold`` of 1. Half-open trials are the store's to judge:
    ``trial_rates`` tells it the rates that judge them.
    """

    __slots__ = ("_breaker", "_trial_rates")

    def __init__(self, breaker: BreakerSettingsView, settings: BreakerSettings) -> None:
        self._breaker = breaker
        self._trial_rates = (0.0, 0.0)
        if settings.success_threshold == 0 and settings.window is not None:  # as policies.breaker.trials_by_rate
            _, _, _, failure_rate, slow, slow_rate = policy_args(settings.window)
            self._trial_rates = (failure_rate, slow_rate if slow > 0.0 else 0.0)

    @property
    def name(self) -> str:
        return self._breaker.name

    @property
    def failure_threshold(self) -> int:
        return 1

    @property
    def reset_timeout(self) -> float:
        return self._breaker.reset_timeout

    @property
    def half_open_max_calls(self) -> int:
        return self._breaker.half_open_max_calls

    @property
    def success_threshold(self) -> int:
        return self._breaker.success_threshold

    @property
    def reset_backoff(self) -> float:
        return self._breaker.reset_backoff

    @property
    def max_reset_timeout(self) -> float | None:
        return self._breaker.max_reset_timeout

    @property
    def trial_rates(self) -> tuple[float, float]:
        """The failure and slow-call rates that judge a half-open period's trials; ``(0.0, 0.0)``
        where ``success_threshold`` counts them (a rate of 0.0: not judged by it)."""
        return self._trial_rates


def policy_args(window: CountWindow | TimeWindow) -> tuple[bool, int, int, float, float, float]:
    """What ``hardy.policies.breaker.new_window_settings`` takes: timed, span, minimum, failure rate,
    slow-call duration (0.0: not tracked) and slow-call rate.

    The fields are read once and checked again: they were checked when the
    window was made, but a subclass may answer otherwise now, and the
    compiled core sizes and indexes the window's C memory by them.
    """
    span, failure_rate, minimum, slow, slow_rate = _checked_fields(window)
    return isinstance(window, TimeWindow), span, minimum, failure_rate, 0.0 if slow is None else slow, slow_rate


class SettingsCache:
    """The ``WindowSettings`` of each CountWindow or TimeWindow object in use, shared by its breakers.

    A registry's breakers, or a keyed breaker's, are made with one window
    object: they share one settings object instead of a copy each. An entry
    lives as long as a breaker uses it (the settings hold the window, so its
    ``id`` is not reused before the entry goes).
    """

    __slots__ = ("_by_id", "_lock")

    def __init__(self) -> None:
        self._by_id: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def get(self, window: CountWindow | TimeWindow, make: Callable[..., Any]) -> Any:
        """The settings of ``window``: ``make(window, *policy_args(window))`` unless made already."""
        settings = self._by_id.get(id(window))
        if settings is not None:
            return settings
        # Made outside the lock: reading the window's fields may run code (a
        # subclass's, the collector's) that makes another windowed breaker.
        made = make(window, *policy_args(window))
        with self._lock:
            return self._by_id.setdefault(id(window), made)


# When each open ``with breaker:`` block of a breaker that measures durations
# started, per thread and task (as hardy._blocks keeps their epochs).
_starts: ContextVar[tuple[tuple[object, float], ...]] = ContextVar("hardy_block_starts", default=())


def push_start(breaker: object, start: float) -> None:
    """Remember that a block of ``breaker`` started at ``start``."""
    _starts.set((*_starts.get(), (breaker, start)))


def pop_start(breaker: object) -> float:
    """Forget the innermost open block of ``breaker`` and return its start."""
    blocks = _starts.get()
    for index in range(len(blocks) - 1, -1, -1):
        if blocks[index][0] is breaker:
            _starts.set(blocks[:index] + blocks[index + 1 :])
            return blocks[index][1]
    return math.nan  # entered before a failing clock reading was recorded: no duration
