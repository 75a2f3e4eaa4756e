"""hardy's own health checks: open circuit breakers, and process basics."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import _live
from ..breaker import registry
from ..state import CircuitState
from .manager import HealthCheck
from .results import HealthStatus

if TYPE_CHECKING:
    from .._core import CircuitBreaker

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


def _unique_keys(names: list[str]) -> list[str]:
    """``names`` made unique: a repeated name gets ``#2``, ``#3``... in order."""
    keys: list[str] = []
    taken: set[str] = set()
    for name in names:
        key, number = name, 1
        while key in taken:  # also steps over a breaker really named "payments#2"
            number += 1
            key = f"{name}#{number}"
        taken.add(key)
        keys.append(key)
    return keys


def circuit_breakers_check() -> dict[str, Any]:
    """DEGRADED while any live breaker is not closed (open, half-open, forced open, disabled), naming each.

    Every breaker alive in the process is looked at, registered or made
    directly with ``hardy.CircuitBreaker(...)``; two breakers sharing a name
    are told apart as ``name`` and ``name#2`` (oldest first).
    """
    troubled: list[tuple[CircuitBreaker, CircuitState]] = []
    for breaker in _live.breakers():
        state = breaker.state  # read once: the listing must agree with itself
        if state is not CircuitState.CLOSED:
            troubled.append((breaker, state))
    if not troubled:
        return {"status": HealthStatus.HEALTHY, "message": "all circuit breakers closed", "breakers": {}}
    details: dict[str, Any] = {}
    for key, (breaker, state) in zip(_unique_keys([breaker.name for breaker, _ in troubled]), troubled, strict=True):
        details[key] = {
            "name": breaker.name,
            "state": state.value,
            "time_until_reset": breaker.get_time_until_reset(),
            "registered": registry.get(breaker.name) is breaker,
        }
    listing = ", ".join(f"{key} ({info['state']})" for key, info in details.items())
    return {"status": HealthStatus.DEGRADED, "message": f"circuit breakers not closed: {listing}", "breakers": details}


def bulkheads_check() -> dict[str, Any]:
    """DEGRADED while any registered bulkhead (:data:`hardy.bulkheads`) is full, naming each.

    A full bulkhead is one with no free slot: further calls wait or are
    rejected. Each is listed with its slots, its waiters and its rejections
    so far.
    """
    from ..bulkhead import bulkheads  # the registry imports the core: not at module import

    full: dict[str, Any] = {}
    for name, pool in bulkheads.all().items():
        stats = pool.get_stats()
        if stats["available"] == 0:
            full[name] = {key: stats[key] for key in ("active", "max_concurrent", "waiting", "rejections")}
    if not full:
        return {"status": HealthStatus.HEALTHY, "message": "no bulkhead is full", "bulkheads": {}}
    listing = ", ".join(
        f"{name} ({info['active']}/{info['max_concurrent']}, {info['waiting']} waiting)" for name, info in full.items()
    )
    return {"status": HealthStatus.DEGRADED, "message": f"bulkheads full: {listing}", "bulkheads": full}


def rate_limiters_check() -> dict[str, Any]:
    """DEGRADED while any registered rate limiter (:data:`hardy.rate_limiters`) has no permit left, naming each.

    A limiter with no permit left turns further calls away (or makes them
    wait) until its rate frees one. Each is listed with its rate, its burst
    and its rejections so far.
    """
    from ..ratelimit import rate_limiters  # the registry imports the core: not at module import

    spent: dict[str, Any] = {}
    for name, limiter in rate_limiters.all().items():
        stats = limiter.get_stats()
        if stats["available"] == 0:
            spent[name] = {key: stats[key] for key in ("rate", "period", "burst", "waited", "rejections")}
    if not spent:
        return {"status": HealthStatus.HEALTHY, "message": "every rate limiter has permits", "rate_limiters": {}}
    listing = ", ".join(
        f"{name} ({info['rate']:g}/{info['period']:g}s, {info['rejections']} rejected)" for name, info in spent.items()
    )
    return {"status": HealthStatus.DEGRADED, "message": f"rate limiters spent: {listing}", "rate_limiters": spent}


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
    """Register ``circuit_breakers``, ``bulkheads``, ``rate_limiters`` and ``process`` on ``health`` (all non-critical).

    Example::

        health = hardy.register_default_checks(hardy.get_health_check())
    """
    health.register("circuit_breakers", timeout=5.0)(circuit_breakers_check)
    health.register("process", timeout=5.0)(process_check)
    health.register("bulkheads", timeout=5.0)(bulkheads_check)
    health.register("rate_limiters", timeout=5.0)(rate_limiters_check)
    return health
