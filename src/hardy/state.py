"""The states of a circuit breaker."""

from __future__ import annotations

import enum

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "STATE_BY_CODE", "CircuitState"]

# The cores keep the state as a small integer so the closed-state check is a
# single comparison; these codes and the enum below are the one mapping.
CLOSED = 0
OPEN = 1
HALF_OPEN = 2


class CircuitState(enum.Enum):
    """The state of a :class:`~hardy.CircuitBreaker`.

    Example::

        if breaker.state is hardy.CircuitState.OPEN:
            serve_from_cache()
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


STATE_BY_CODE = (CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN)
