"""Delivery of circuit-breaker state changes: listeners, ``hardy.events`` subscribers, the log.

Both cores call :func:`notify` after every transition, outside any lock
(transitions are rare: this is never the path of a call that succeeds in a
closed breaker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from . import _log, events
from .state import STATE_BY_CODE, CircuitState

__all__ = ["logger", "notify"]

logger = _log.component("breaker")

_LEVELS = {
    CircuitState.OPEN: logging.WARNING,
    CircuitState.HALF_OPEN: logging.INFO,
    CircuitState.CLOSED: logging.INFO,
    CircuitState.FORCED_OPEN: logging.WARNING,
    CircuitState.DISABLED: logging.WARNING,
}


def notify(breaker: Any, listeners: Sequence[Callable[..., Any]], old: int, new: int) -> None:
    """Call every listener with ``(breaker, old_state, new_state)``, then tell subscribers and the log.

    Runs after the state has changed and outside any lock. A listener that
    raises is logged and skipped: observing the breaker must never break the
    call that moved it.
    """
    old_state = STATE_BY_CODE[old]
    new_state = STATE_BY_CODE[new]
    for listener in tuple(listeners):
        try:
            listener(breaker, old_state, new_state)
        except Exception as exc:
            # Every failure, not rate-limited: a listener bug, on a transition (rare by nature).
            logger.exception(
                "circuit breaker %r: listener %r failed on %s -> %s",
                breaker.name,
                listener,
                old_state.value,
                new_state.value,
                extra=_log.fields("breaker", breaker.name, "listener_failed", error_type=type(exc).__name__),
            )
    if events.active:
        events.emit("state_change", breaker.name, {"old_state": old_state.value, "new_state": new_state.value})
    level = _LEVELS[new_state]
    if logger.isEnabledFor(level):
        _log.warn_limited(
            logger,
            ("state", breaker.name, new_state),
            "circuit breaker %r: %s -> %s",
            breaker.name,
            old_state.value,
            new_state.value,
            extra=_log.fields(
                "breaker", breaker.name, "state_change", old_state=old_state.value, new_state=new_state.value
            ),
            level=level,
        )
