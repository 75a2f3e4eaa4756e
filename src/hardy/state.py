"""The states of a circuit breaker."""

from __future__ import annotations

import enum

from .policies.breaker import CLOSED, DISABLED, FORCED_OPEN, HALF_OPEN, OPEN

__all__ = ["CLOSED", "DISABLED", "FORCED_OPEN", "HALF_OPEN", "OPEN", "STATE_BY_CODE", "CircuitState"]

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
    FORCED_OPEN = "forced_open"  # force_open(): every call rejected until reset()
    DISABLED = "disabled"  # disable(): every call admitted, nothing recorded, until reset()


STATE_BY_CODE = tuple(
    {
        CLOSED: CircuitState.CLOSED,
        OPEN: CircuitState.OPEN,
        HALF_OPEN: CircuitState.HALF_OPEN,
        FORCED_OPEN: CircuitState.FORCED_OPEN,
        DISABLED: CircuitState.DISABLED,
    }[code]
    for code in range(5)
)
