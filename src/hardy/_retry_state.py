"""What retry hooks and statistics see: ``RetryState`` and ``RetryStatistics``.

Both cores build a :class:`RetryState` only when a ``before_sleep`` or
``on_giveup`` hook is there to receive it, and keep a retried function's
counters as plain integers that :class:`RetryStatistics` reads on demand, so
neither costs anything on a first-attempt success.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counters", "RetryState", "RetryStatistics"]


@dataclass(frozen=True, slots=True)
class RetryState:
    """Where a retry stands, as ``before_sleep`` and ``on_giveup`` hooks receive it.

    ``attempt`` is the 1-based number of the attempt that just ended (as
    ``on_retry`` counts); ``delay`` the seconds about to be slept (``None``
    in ``on_giveup``); ``elapsed`` the seconds since the first attempt
    started; ``exception`` the attempt's error, or ``None`` when
    ``retry_on_result`` rejected ``result``; ``fn``, ``args`` and ``kwargs``
    the call being retried (``None``, ``()`` and ``{}`` for a
    :func:`hardy.attempts` block).

    Example::

        def log_retry(state: hardy.RetryState) -> None:
            log.warning("attempt %d of %s failed (%r); sleeping %.1fs",
                        state.attempt, state.fn, state.exception, state.delay)

        @hardy.retry(before_sleep=log_retry)
        def fetch(url: str) -> bytes: ...
    """

    attempt: int
    delay: float | None
    elapsed: float
    exception: BaseException | None
    result: Any
    fn: Callable[..., Any] | None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict[str, Any])


_FIELDS = ("calls", "attempts", "retries", "successes", "giveups", "slept")


class RetryStatistics(Mapping[str, float]):
    """A retried function's counters, read live: ``fn.statistics["retries"]``.

    ``calls`` counts calls whose first attempt has ended; ``attempts`` every
    attempt made; ``retries`` the decisions to try again; ``successes`` the
    calls that returned a result ``retry_on_result`` accepted; ``giveups``
    the calls that stopped because attempts or the deadline ran out (what
    ``on_giveup`` sees); ``slept`` the seconds of delay asked of the sleep
    (recorded, not slept, under :func:`hardy.testing.instant_retries`). A
    call that raised an error that is not retried is a call and no more.
    ``dict(fn.statistics)`` takes a snapshot.

    Example::

        @hardy.retry(max_attempts=3)
        def fetch() -> bytes: ...

        fetch()
        print(fetch.statistics["attempts"], dict(fetch.statistics))
    """

    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], tuple[int, int, int, int, int, float]]) -> None:
        self._read = read

    def _values(self) -> dict[str, float]:
        first_ok, slow_calls, retries, slow_ok, giveups, slept = self._read()
        calls = first_ok + slow_calls
        return {
            "calls": calls,
            "attempts": calls + retries,
            "retries": retries,
            "successes": first_ok + slow_ok,
            "giveups": giveups,
            "slept": slept,
        }

    def __getitem__(self, key: str) -> float:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    def __repr__(self) -> str:
        return f"RetryStatistics({self._values()!r})"


class Counters:
    """The twin's (and the generator wrappers') counters of one retried function.

    ``first_ok`` is bumped without a lock on the success path: under the GIL
    adding one to an attribute runs no Python code, so it is not interleaved
    (as the twin's breaker counts closed-state successes). The rest, off the
    success path, take the lock.
    """

    __slots__ = ("_counted", "_lock", "first_ok", "giveups", "retries", "slept", "slow_calls", "slow_ok")

    def __init__(self) -> None:
        self._counted = False  # metrics read these (hardy._retry_events.declare)
        self._lock = threading.Lock()
        self.first_ok = 0
        self.slow_calls = 0
        self.retries = 0
        self.slow_ok = 0
        self.giveups = 0
        self.slept = 0.0

    def _add(self, calls: int, retries: int, successes: int, giveups: int, slept: float) -> None:
        with self._lock:
            self.slow_calls += calls
            self.retries += retries
            self.slow_ok += successes
            self.giveups += giveups
            self.slept += slept

    def _counters(self) -> tuple[int, int, int, int, int, float]:
        with self._lock:
            return self.first_ok, self.slow_calls, self.retries, self.slow_ok, self.giveups, self.slept
