"""The sleeps between retries, and the switch that makes them instant in tests.

Both cores sleep through these two functions only when a delay is above
zero. ``hardy.testing`` turns sleeping into recording: the state is
process-wide (a retry in a worker thread or another task sees it too) and
guarded by a lock.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable

from . import _aio

__all__ = ["SleepRecord", "async_sleep", "attempt_cap", "pop_record", "push_record", "sync_sleep"]


class SleepRecord:
    """The sleeps requested while retries were instant: how many, and how long each.

    Example::

        with hardy.testing.instant_retries() as sleeps:
            flaky()
        assert sleeps.delays == [1.0, 2.0]
    """

    def __init__(self, max_attempts: int | None = None) -> None:
        self._lock = threading.Lock()
        self._delays: list[float] = []
        self.max_attempts = max_attempts
        """The cap on every retry's attempts while this record is the innermost one (None: no cap)."""

    def add(self, delay: float) -> None:
        """Record one sleep of ``delay`` seconds."""
        with self._lock:
            self._delays.append(delay)

    @property
    def count(self) -> int:
        """How many sleeps were requested."""
        with self._lock:
            return len(self._delays)

    @property
    def delays(self) -> list[float]:
        """The requested delays, in seconds, in order."""
        with self._lock:
            return list(self._delays)

    @property
    def total(self) -> float:
        """The sum of the requested delays."""
        with self._lock:
            return sum(self._delays)

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self._delays.clear()

    def __repr__(self) -> str:
        return f"<SleepRecord count={self.count} total={self.total:g}s>"


_lock = threading.Lock()
_records: list[SleepRecord] = []


def push_record(record: SleepRecord) -> None:
    with _lock:
        _records.append(record)


def pop_record(record: SleepRecord) -> None:
    with _lock:
        _records.remove(record)


def _current() -> SleepRecord | None:
    records = _records
    return records[-1] if records else None


def attempt_cap() -> int:
    """The testing cap on attempts (``instant_retries(max_attempts=n)``), 0 for none.

    The cores read it only after a failed attempt, never on the success path.
    """
    record = _current()
    if record is None or record.max_attempts is None:
        return 0
    return record.max_attempts


def sync_sleep(delay: float, custom: Callable[[float], object] | None = None) -> None:
    """Sleep ``delay`` seconds (with ``custom``, the injected ``sleep=``), or record it while retries are instant.

    Instant retries win over an injected sleep: the testing switch makes
    every retry instant, whatever sleeps it was given.
    """
    record = _current()
    if record is not None:
        record.add(delay)
    elif custom is not None:
        custom(delay)
    else:
        time.sleep(delay)


async def async_sleep(delay: float, custom: Callable[[float], object] | None = None) -> None:
    """Await ``delay`` seconds under asyncio or trio; with ``custom`` (the injected ``sleep=``), call it instead.

    What ``custom`` returns is awaited when it is awaitable.
    """
    record = _current()
    if record is not None:
        record.add(delay)
    elif custom is not None:
        pending = custom(delay)
        if inspect.isawaitable(pending):
            await pending
    else:
        await _aio.sleep(delay)
