"""hardy's own health checks: open circuit breakers, and process basics."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from ..breaker import registry
from ..state import CircuitState
from .manager import HealthCheck
from .results import HealthStatus

__all__ = ["register_default_checks"]

_PROCESS_STARTED = time.monotonic()


def _resident_bytes() -> int | None:
    """Resident memory of this process, from the standard library only."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # the peak, where the current is not exposed


def circuit_breakers_check() -> dict[str, Any]:
    """DEGRADED while any registered breaker is open or half-open, naming each."""
    troubled: dict[str, Any] = {}
    for name, breaker in registry.all().items():
        state = breaker.state
        if state is not CircuitState.CLOSED:
            troubled[name] = {"state": state.value, "time_until_reset": breaker.get_time_until_reset()}
    if not troubled:
        return {"status": HealthStatus.HEALTHY, "message": "all circuit breakers closed", "breakers": {}}
    listing = ", ".join(f"{name} ({info['state']})" for name, info in troubled.items())
    return {"status": HealthStatus.DEGRADED, "message": f"circuit breakers not closed: {listing}", "breakers": troubled}


def process_check() -> dict[str, Any]:
    """Uptime, resident memory and thread count; always HEALTHY."""
    return {
        "status": HealthStatus.HEALTHY,
        "uptime_seconds": round(time.monotonic() - _PROCESS_STARTED, 3),
        "resident_memory_bytes": _resident_bytes(),
        "threads": threading.active_count(),
        "pid": os.getpid(),
    }


def register_default_checks(health: HealthCheck) -> HealthCheck:
    """Register ``circuit_breakers`` and ``process`` on ``health`` (both non-critical).

    Example::

        health = hardy.register_default_checks(hardy.get_health_check())
    """
    health.register("circuit_breakers", timeout=5.0)(circuit_breakers_check)
    health.register("process", timeout=5.0)(process_check)
    return health
