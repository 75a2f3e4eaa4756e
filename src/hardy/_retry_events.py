"""What the retry loops of both cores report, and only when they retry or give up.

The loops call :func:`retried` once the decision to retry is taken (before
``on_retry`` and the sleep) and :func:`gave_up` when a retryable failure
ends the call (out of attempts or out of time). Neither runs on a
first-attempt success, nor for an error the loop does not retry (that one is
not a give-up: it was never going to be retried). Each counts (for
:mod:`hardy.metrics`), emits the event (for :mod:`hardy.events`) and logs:
retries at DEBUG, give-ups at INFO, on ``hardy.retry``.

The wrapper's name is its qualified name (``module.qualname``), the one its
metrics and events carry.

A wrapper made by :func:`hardy.retry` is *declared*: its metrics read the
counters it keeps for ``fn.statistics`` at scrape time (:func:`counts`), so
nothing is tallied per retry and the compiled loop calls :func:`retried` only
while an event or a DEBUG record is wanted. A wrapper that is gone leaves its
last-read counts in the tallies, so the exported counters never go down. Other
wrappers (``retry_with_backoff``'s, one per call) are tallied per retry.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from . import _log, _tallies, events
from ._chain import describe

__all__ = ["counts", "declare", "gave_up", "retried"]

logger = _log.component("retry")
_count_lock = _tallies._lock
_retries = _tallies.retries


class _Declared:
    """A declared wrapper: its name, a weak reference, and how to read its counters.

    The reader is ``fn.statistics``' (bound to the counters, not to the
    wrapper), so the counts can still be read once the wrapper is gone.
    """

    __slots__ = ("name", "read", "ref")

    def __init__(self, name: str, wrapper: Any) -> None:
        self.name = name
        self.ref = weakref.ref(wrapper)
        self.read: Callable[[], tuple[Any, ...]] = wrapper.statistics._read


_live: list[_Declared] = []
_prune_at = 64  # prune the gone wrappers when the list reaches this length (then twice what is left)


def declare(wrapper: Any) -> None:
    """Count ``wrapper``'s retries from its own counters; they show (at zero) from now on."""
    global _prune_at
    name = describe(wrapper)
    entry = _Declared(name, wrapper)
    with _count_lock:
        _tallies.retries.setdefault(name, 0)
        _tallies.giveups.setdefault(name, 0)
        _live.append(entry)
        if len(_live) >= _prune_at:
            _prune()
            _prune_at = max(64, 2 * len(_live))
    # Its counters (both cores') now stand for the tally: the compiled loop skips reports nobody wants.
    owner: Any = getattr(entry.read, "__self__", None)
    if owner is not None and hasattr(owner, "_counted"):
        owner._counted = True


def _prune() -> None:
    """Fold what each gone wrapper counted into the tallies (under the lock)."""
    alive: list[_Declared] = []
    for entry in _live:
        if entry.ref() is None:
            read = entry.read()
            _tallies.retries[entry.name] = _tallies.retries.get(entry.name, 0) + read[2]
            _tallies.giveups[entry.name] = _tallies.giveups.get(entry.name, 0) + read[4]
        else:
            alive.append(entry)
    _live[:] = alive


def counts() -> tuple[dict[str, int], dict[str, int]]:
    """Retries and give-ups per wrapper name: the tallies plus every declared wrapper's counters."""
    with _count_lock:
        _prune()
        retries = dict(_tallies.retries)
        giveups = dict(_tallies.giveups)
        for entry in _live:
            read = entry.read()
            retries[entry.name] = retries.get(entry.name, 0) + read[2]
            giveups[entry.name] = giveups.get(entry.name, 0) + read[4]
    return retries, giveups


def retried(wrapper: Any, error: BaseException | None, attempt: int, delay: float, counters: Any = None) -> None:
    """Attempt ``attempt`` of ``wrapper`` failed with ``error`` (``None``: its result); next in ``delay`` s.

    ``counters`` are the wrapper's; declared ones count the retry themselves.
    """
    name = describe(wrapper)
    if not getattr(counters, "_counted", False):
        with _count_lock:  # _tallies.count, inlined: this runs on every retry
            _retries[name] = _retries.get(name, 0) + 1
    if events.active:
        error_type = None if error is None else type(error).__name__
        events.emit("retry", name, {"attempt": attempt, "delay": delay, "error": error, "error_type": error_type})
    if logger.isEnabledFor(logging.DEBUG):
        error_type = None if error is None else type(error).__name__
        logger.debug(
            "%s: attempt %d failed (%s); retrying in %.3gs",
            name,
            attempt,
            error_type or "result retried",
            delay,
            extra=_log.fields("retry", name, "retry", attempt=attempt, delay=delay, error_type=error_type),
        )


def gave_up(
    wrapper: Any, error: BaseException | None, attempt: int, counters: Any = None, budget_exhausted: bool = False
) -> None:
    """``wrapper`` stops after ``attempt`` attempts; the last failed with ``error`` (``None``: its result).

    ``budget_exhausted``: its retry budget (:class:`hardy.RetryBudget`), not
    its attempts or deadline, stopped it; the event and the record say so.
    """
    name = describe(wrapper)
    if not getattr(counters, "_counted", False):
        _tallies.count(_tallies.giveups, name)
    error_type = None if error is None else type(error).__name__
    if events.active:
        data = {"attempt": attempt, "error": error, "error_type": error_type}
        if budget_exhausted:
            data["budget_exhausted"] = True
        events.emit("giveup", name, data)
    if logger.isEnabledFor(logging.INFO):
        more: dict[str, bool] = {"budget_exhausted": True} if budget_exhausted else {}
        _log.warn_limited(
            logger,
            ("giveup", name),
            "%s: giving up after %d attempt%s (%s)%s",
            name,
            attempt,
            "" if attempt == 1 else "s",
            error_type or "result retried",
            ": retry budget exhausted" if budget_exhausted else "",
            extra=_log.fields("retry", name, "giveup", attempt=attempt, error_type=error_type, **more),
            level=logging.INFO,
        )
