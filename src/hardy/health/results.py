"""What health checks report: ``HealthStatus``, ``HealthCheckResult``, ``SystemHealth``."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HealthCheckResult", "HealthStatus", "SystemHealth"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class HealthStatus(enum.Enum):
    """The health of one check, or of the whole system.

    Example::

        if health.status is hardy.HealthStatus.UNHEALTHY:
            alert()
    """

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


# The IETF health+json draft's three statuses.
_HEALTH_JSON = {
    HealthStatus.HEALTHY: "pass",
    HealthStatus.DEGRADED: "warn",
    HealthStatus.UNHEALTHY: "fail",
    HealthStatus.UNKNOWN: "warn",
}


@dataclass(frozen=True)
class HealthCheckResult:
    """The outcome of one check.

    Example::

        HealthCheckResult("db", HealthStatus.HEALTHY, "ok", latency_ms=1.2, details={"pool": 8})
    """

    name: str
    status: HealthStatus
    message: str = ""
    latency_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime.datetime = field(default_factory=_now)
    critical: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the result."""
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "latency_ms": self.latency_ms,
            "details": _jsonable(self.details),
            "timestamp": self.timestamp.isoformat(),
            "critical": self.critical,
        }


@dataclass(frozen=True)
class SystemHealth:
    """The health of the whole system: the overall status and every check's result.

    Example::

        health = await hardy.get_health_check().run_all()
        json.dumps(health.to_dict())
    """

    status: HealthStatus
    checks: tuple[HealthCheckResult, ...] | list[HealthCheckResult]
    version: str = "unknown"
    uptime_seconds: float = 0.0
    timestamp: datetime.datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """``status``, ``version``, ``uptime_seconds``, ``timestamp`` (ISO 8601) and ``checks``."""
        return {
            "status": self.status.value,
            "version": self.version,
            "uptime_seconds": self.uptime_seconds,
            "timestamp": self.timestamp.isoformat(),
            "checks": [check.to_dict() for check in self.checks],
        }

    def to_health_json(self) -> dict[str, Any]:
        """The IETF "Health Check Response Format for HTTP APIs" shape (``application/health+json``).

        ``status`` is ``pass``, ``warn`` or ``fail``; ``checks`` is keyed by
        component, each a list of one object with ``status``, ``time``,
        ``observedValue`` (a check's ``details["observed_value"]``, when it
        gives one) and ``output`` for failures.
        """
        checks: dict[str, list[dict[str, Any]]] = {}
        for check in self.checks:
            entry: dict[str, Any] = {
                "componentId": check.name,
                "status": _HEALTH_JSON[check.status],
                "time": check.timestamp.isoformat(),
                "observedUnit": "ms",
                "observedValue": check.latency_ms,
            }
            if "observed_value" in check.details:
                entry["observedValue"] = _jsonable(check.details["observed_value"])
                entry.pop("observedUnit")
                if "observed_unit" in check.details:
                    entry["observedUnit"] = str(check.details["observed_unit"])
            if check.status in (HealthStatus.UNHEALTHY, HealthStatus.DEGRADED) and check.message:
                entry["output"] = check.message
            checks[check.name] = [entry]
        return {
            "status": _HEALTH_JSON[self.status],
            "version": self.version,
            "checks": checks,
        }


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into its ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item) for item in value]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)
