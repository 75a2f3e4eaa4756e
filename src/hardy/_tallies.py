"""Counts the cores do not keep, kept off the success path: timeouts fired, fallbacks used, retries.

Each is a dict from a source's name to a count, changed only under the lock
(on a timeout, a fallback answering, a retry or a give-up: never on a plain
success) and read whole at scrape time by :mod:`hardy.metrics`. Names come
from the code (functions, chains, operations), so the dicts stay small.

Example::

    _tallies.count(_tallies.timeouts, "fetch")
    _tallies.snapshot(_tallies.timeouts)   # {"fetch": 1}
"""

from __future__ import annotations

import threading

__all__ = ["count", "fallbacks", "giveups", "retries", "snapshot", "timeouts"]

_lock = threading.Lock()
timeouts: dict[str, int] = {}
fallbacks: dict[str, int] = {}
retries: dict[str, int] = {}
giveups: dict[str, int] = {}


def count(tally: dict[str, int], name: str, n: int = 1) -> None:
    """Add ``n`` to ``tally[name]``."""
    with _lock:
        tally[name] = tally.get(name, 0) + n


def declare(tally: dict[str, int], name: str) -> None:
    """Make ``name`` appear in ``tally`` (at 0) before anything is counted."""
    with _lock:
        tally.setdefault(name, 0)


def snapshot(tally: dict[str, int]) -> dict[str, int]:
    """A copy of ``tally``, consistent at one instant."""
    with _lock:
        return dict(tally)
