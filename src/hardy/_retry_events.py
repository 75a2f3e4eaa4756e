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
"""

from __future__ import annotations

import logging
from typing import Any

from . import _log, _tallies, events
from ._chain import describe

__all__ = ["declare", "gave_up", "retried"]

logger = _log.component("retry")
_count_lock = _tallies._lock
_retries = _tallies.retries


def declare(wrapper: Any) -> None:
    """Make ``wrapper``'s counts appear (at zero) before its first retry: at decoration."""
    name = describe(wrapper)
    _tallies.declare(_tallies.retries, name)
    _tallies.declare(_tallies.giveups, name)


def retried(wrapper: Any, error: BaseException | None, attempt: int, delay: float) -> None:
    """Attempt ``attempt`` of ``wrapper`` failed with ``error`` (``None``: its result); next in ``delay`` s."""
    name = describe(wrapper)
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


def gave_up(wrapper: Any, error: BaseException | None, attempt: int) -> None:
    """``wrapper`` stops after ``attempt`` attempts; the last failed with ``error`` (``None``: its result)."""
    name = describe(wrapper)
    _tallies.count(_tallies.giveups, name)
    error_type = None if error is None else type(error).__name__
    if events.active:
        events.emit("giveup", name, {"attempt": attempt, "error": error, "error_type": error_type})
    if logger.isEnabledFor(logging.INFO):
        _log.warn_limited(
            logger,
            ("giveup", name),
            "%s: giving up after %d attempt%s (%s)",
            name,
            attempt,
            "" if attempt == 1 else "s",
            error_type or "result retried",
            extra=_log.fields("retry", name, "giveup", attempt=attempt, error_type=error_type),
            level=logging.INFO,
        )
