"""The ``"rejection"`` event: a breaker, a bulkhead or a rate limiter refused a call.

Rejections are the one failure path callers expect to be fast (an open
breaker answers at once, a full bulkhead too), so the cores call
:func:`rejected` only while a subscriber wants ``"rejection"`` events: each
core watches :mod:`hardy.events` and sets or clears its hook (``hook_for``),
which its breakers, bulkheads and rate limiters test where they raise their
error. ``try_acquire()`` answering ``False`` is counted but not an event: no
call was refused, its caller asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import events
from .errors import BulkheadFullError, RateLimitExceededError

__all__ = ["hook_for", "rejected"]


def rejected(source: Any, error: Any) -> None:
    """``source`` refused a call with ``error`` (a CircuitOpenError, BulkheadFullError or RateLimitExceededError)."""
    if not events.active:
        return
    data: dict[str, Any]
    if isinstance(error, BulkheadFullError):
        data = {"by": "bulkhead", "max_concurrent": error.max_concurrent, "waited": error.max_wait}
    elif isinstance(error, RateLimitExceededError):
        data = {"by": "rate_limiter", "retry_after": error.retry_after}
    else:
        data = {"by": "circuit_breaker", "reset_time": error.reset_time}
    events.emit("rejection", source.name, data)


def hook_for(wanted: frozenset[str]) -> Callable[[Any, Any], None] | None:
    """The hook a core should call on a rejection, given the kinds subscribers want."""
    return rejected if "rejection" in wanted else None
