"""What a timeout tells the logs and subscribers: it fired; its fallback answered.

Shared by every kind of timeout (sync in both cores, thread mode, async), so
each fired deadline is reported once, in the same words: a (rate-limited)
WARNING on ``hardy.timeout``, a ``"timeout"`` event, one more in the
timeouts-fired count; and when a fallback answers for it, an INFO on
``hardy.fallback``, a ``"fallback"`` event and one more fallback used.
"""

from __future__ import annotations

import logging

from . import _log, _tallies, events
from .errors import TimeoutError  # noqa: A004 - hardy.TimeoutError subclasses the builtin

__all__ = ["fallback_answered", "timed_out"]

logger = _log.component("timeout")
fallback_logger = _log.component("fallback")


def timed_out(operation: str, seconds: float) -> TimeoutError:
    """Report that ``operation`` ran out of its ``seconds``; the error to raise for it."""
    error = TimeoutError(operation, seconds)
    _tallies.count(_tallies.timeouts, operation)
    if events.active:
        events.emit("timeout", operation, {"seconds": seconds})
    # One record per timeout, never rate-limited: issue 13 (and the reference) promise it.
    if logger.isEnabledFor(logging.WARNING):
        logger.warning(
            "%s",
            error,
            extra=_log.fields("timeout", operation, "timeout", delay=seconds, error_type="TimeoutError"),
        )
    return error


def fallback_answered(operation: str) -> None:
    """Report that the fallback of a timed-out ``operation`` returned in its place."""
    _tallies.count(_tallies.fallbacks, operation)
    if events.active:
        events.emit("fallback", operation, {"via": "timeout", "function": None, "error_type": "TimeoutError"})
    if fallback_logger.isEnabledFor(logging.INFO):
        fallback_logger.info(
            "Operation '%s' timed out; its fallback answered",
            operation,
            extra=_log.fields("fallback", operation, "fallback", error_type="TimeoutError"),
        )
