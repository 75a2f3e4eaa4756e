"""The states of a circuit breaker."""

from __future__ import annotations

import enum

from .policies.breaker import CLOSED, HALF_OPEN, OPEN

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "STATE_BY_CODE", "CircuitState"]

# The cores keep the state as a small integer (hardy.policies.breaker) so the
# closed-state check is a single comparison; STATE_BY_CODE is the one mapping.


class CircuitState(enum.Enum):
    """The state of a :class:`~hardy.CircuitBreaker`.

    Example::

        if breaker.state is hardy.CircuitState.OPEN:
            serve_from_cache()
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


STATE_BY_CODE = tuple(
    {CLOSED: CircuitState.CLOSED, OPEN: CircuitState.OPEN, HALF_OPEN: CircuitState.HALF_OPEN}[code] for code in range(3)
)
