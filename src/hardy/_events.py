"""Delivery of circuit-breaker state changes to listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from .state import STATE_BY_CODE

__all__ = ["logger", "notify"]

logger = logging.getLogger("hardy")


def notify(breaker: Any, listeners: Sequence[Callable[..., Any]], old: int, new: int) -> None:
    """Call every listener with ``(breaker, old_state, new_state)``.

    Runs after the state has changed and outside any lock. A listener that
    raises is logged and skipped: observing the breaker must never break the
    call that moved it.
    """
    old_state = STATE_BY_CODE[old]
    new_state = STATE_BY_CODE[new]
    for listener in tuple(listeners):
        try:
            listener(breaker, old_state, new_state)
        except Exception:
            logger.exception(
                "circuit breaker %r: listener %r failed on %s -> %s",
                breaker.name,
                listener,
                old_state.value,
                new_state.value,
            )
