"""The ``"rejection"`` event: an open breaker refused a call.

Rejections are the one failure path callers expect to be fast (an open
breaker answers at once), so the cores call :func:`rejected` only while a
subscriber wants ``"rejection"`` events: each core watches
:mod:`hardy.events` and sets or clears its hook (``hook_for``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import events

__all__ = ["hook_for", "rejected"]


def rejected(breaker: Any, error: Any) -> None:
    """``breaker`` refused a call with ``error`` (a :class:`~hardy.CircuitOpenError`)."""
    if events.active:
        events.emit("rejection", breaker.name, {"reset_time": error.reset_time})


def hook_for(wanted: frozenset[str]) -> Callable[[Any, Any], None] | None:
    """The hook a core should call on a rejection, given the kinds subscribers want."""
    return rejected if "rejection" in wanted else None
