"""Helpers for testing code that uses hardy: instant retries.

While retries are instant, every sleep between attempts returns at once and
is recorded instead (count and requested delays), so tests of retrying code
run fast and can still check the backoff. The switch is process-wide: retries
in other threads and tasks are instant too.

Example, as a context manager::

    with hardy.testing.instant_retries() as sleeps:
        fetch_with_retries()
    assert sleeps.count == 2

Example, as a pytest fixture in ``conftest.py``::

    @pytest.fixture(autouse=True)
    def instant_retries():
        with hardy.testing.instant_retries() as sleeps:
            yield sleeps

With hardy installed, pytest also finds the fixtures of
``hardy.pytest_plugin`` (``instant_retries``, ``hardy_registry``).
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

from ._sleep import SleepRecord, pop_record, push_record
from ._validate import positive_int

__all__ = ["SleepRecord", "instant_retries", "set_instant_retries"]

_switched_on: SleepRecord | None = None


@contextmanager
def instant_retries(max_attempts: int | None = None) -> Generator[SleepRecord, None, None]:
    """Make retry sleeps instant inside the block; yields the :class:`SleepRecord`.

    ``max_attempts`` also caps every retry's attempts (``1``: no retries at
    all), whatever the code under test asked for; a retry that hits the cap
    gives up as when its own attempts run out (``on_giveup`` is called).
    Blocks nest: the innermost one records and caps.

    Example::

        with hardy.testing.instant_retries(max_attempts=1):
            with pytest.raises(ConnectionError):
                fetch()          # one attempt, no retry
    """
    if max_attempts is not None:
        max_attempts = positive_int("max_attempts", max_attempts)
    record = SleepRecord(max_attempts)
    push_record(record)
    try:
        yield record
    finally:
        pop_record(record)


def set_instant_retries(enabled: bool) -> SleepRecord | None:
    """Switch instant retries on or off for the whole process.

    Returns the :class:`SleepRecord` when switching on, ``None`` when off.
    Useful where a context manager does not fit (a ``pytest_configure`` hook,
    a test suite's set-up). Switching on twice keeps the first record.

    Example::

        record = hardy.testing.set_instant_retries(True)
        ...
        hardy.testing.set_instant_retries(False)
    """
    global _switched_on
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    if enabled:
        if _switched_on is None:
            _switched_on = SleepRecord()
            push_record(_switched_on)
        return _switched_on
    if _switched_on is not None:
        pop_record(_switched_on)
        _switched_on = None
    return None
