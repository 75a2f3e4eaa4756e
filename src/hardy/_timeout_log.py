"""What a timeout tells the logs: one WARNING when it fires, one INFO when its fallback answers.

Shared by every kind of timeout (sync in both cores, thread mode, async), so
each fired deadline is logged once, in the same words, on the ``hardy``
logger.
"""

from __future__ import annotations

import logging

from .errors import TimeoutError  # noqa: A004 - hardy.TimeoutError subclasses the builtin

__all__ = ["fallback_answered", "timed_out"]

logger = logging.getLogger("hardy")


def timed_out(operation: str, seconds: float) -> TimeoutError:
    """Log that ``operation`` ran out of its ``seconds``; the error to raise for it."""
    error = TimeoutError(operation, seconds)
    logger.warning("%s", error)
    return error


def fallback_answered(operation: str) -> None:
    """Log that the fallback of a timed-out ``operation`` returned in its place."""
    logger.info("Operation '%s' timed out; its fallback answered", operation)
