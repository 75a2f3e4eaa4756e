"""The sleeps between retries, and the switch that makes them instant in tests.

Both cores sleep through these two functions only when a delay is above
zero. ``hardy.testing`` turns sleeping into recording: the state is
process-wide (a retry in a worker thread or another task sees it too) and
guarded by a lock.
"""

from __future__ import annotations

import threading
import time

from . import _aio

__all__ = ["SleepRecord", "async_sleep", "pop_record", "push_record", "sync_sleep"]


class SleepRecord:
    """The sleeps requested while retries were instant: how many, and how long each.

    Example::

        with hardy.testing.instant_retries() as sleeps:
            flaky()
        assert sleeps.delays == [1.0, 2.0]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delays: list[float] = []

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


def sync_sleep(delay: float) -> None:
    """Sleep ``delay`` seconds, or record it while retries are instant."""
    record = _current()
    if record is not None:
        record.add(delay)
    else:
        time.sleep(delay)


async def async_sleep(delay: float) -> None:
    """Await ``delay`` seconds (under asyncio or trio), or record it while retries are instant."""
    record = _current()
    if record is not None:
        record.add(delay)
    else:
        await _aio.sleep(delay)
