"""What health checks report: ``HealthStatus``, ``HealthCheckResult``, ``SystemHealth``."""

from __future__ import annotations

import datetime
import enum
import math
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

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

_STATUS_VALUES = tuple(status.value for status in HealthStatus)


def _status(owner: str, value: object) -> HealthStatus:
    """A ``HealthStatus``; exactly one of its values (``"unhealthy"``) is taken as that member."""
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, str):
        try:
            return HealthStatus(value)
        except ValueError:
            raise ValueError(
                f"{owner}.status must be a HealthStatus or one of its values {_STATUS_VALUES}, got {value!r}"
            ) from None
    raise TypeError(f"{owner}.status must be a HealthStatus, got {value!r} ({type(value).__name__})")


def _text(owner: str, field_name: str, value: object, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{field_name} must be a str, got {value!r} ({type(value).__name__})")
    if not empty and not value:
        raise ValueError(f"{owner}.{field_name} must be a non-empty str, got {value!r}")
    return value


def _amount(owner: str, field_name: str, value: object) -> float:
    """A finite real number ``>= 0``, as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}.{field_name} must be a number, got {value!r} ({type(value).__name__})")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result) or result < 0.0:
        raise ValueError(f"{owner}.{field_name} must be a finite number >= 0, got {value!r}")
    return result


def _moment(owner: str, value: object) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{owner}.timestamp must be a datetime, got {value!r} ({type(value).__name__})")
    if value.utcoffset() is None:
        raise ValueError(f"{owner}.timestamp must be timezone-aware (for example in UTC), got {value!r}")
    return value


@dataclass(frozen=True)
class HealthCheckResult:
    """The outcome of one check.

    Every field is checked when the result is made: a wrong type raises
    :class:`TypeError`, a wrong value :class:`ValueError`, each naming the
    field. ``status`` may be one of the :class:`HealthStatus` values
    (``"unhealthy"``), stored as that member; ``latency_ms`` is a finite
    number ``>= 0``; ``details`` is any mapping, copied, and whatever in it
    JSON cannot hold renders as its ``str``; ``timestamp`` is timezone-aware.

    Example::

        HealthCheckResult("db", HealthStatus.HEALTHY, "ok", latency_ms=1.2, details={"pool": 8})
    """

    name: str
    status: HealthStatus
    message: str = ""
    latency_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict[str, Any])
    timestamp: datetime.datetime = field(default_factory=_now)
    critical: bool = False

    def __post_init__(self) -> None:
        owner = "HealthCheckResult"
        _text(owner, "name", self.name, empty=False)
        # frozen: normalised values are stored past the dataclass's __setattr__
        object.__setattr__(self, "status", _status(owner, self.status))
        _text(owner, "message", self.message)
        object.__setattr__(self, "latency_ms", _amount(owner, "latency_ms", self.latency_ms))
        if not isinstance(self.details, Mapping):
            raise TypeError(f"{owner}.details must be a mapping, got {self.details!r} ({type(self.details).__name__})")
        # A copy: the result is frozen, so a caller's dict changed later must not change it.
        object.__setattr__(self, "details", dict(self.details))
        _moment(owner, self.timestamp)
        if not isinstance(self.critical, bool):
            raise TypeError(f"{owner}.critical must be a bool, got {self.critical!r} ({type(self.critical).__name__})")

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

    Its fields are checked like :class:`HealthCheckResult`'s: ``checks`` is a
    list or tuple of results, ``version`` a ``str``, ``uptime_seconds`` a
    finite number ``>= 0``, ``timestamp`` timezone-aware.

    Example::

        health = await hardy.get_health_check().run_all()
        json.dumps(health.to_dict())
    """

    status: HealthStatus
    checks: tuple[HealthCheckResult, ...] | list[HealthCheckResult]
    version: str = "unknown"
    uptime_seconds: float = 0.0
    timestamp: datetime.datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        owner = "SystemHealth"
        object.__setattr__(self, "status", _status(owner, self.status))
        if not isinstance(self.checks, (list, tuple)):
            raise TypeError(
                f"{owner}.checks must be a list or tuple of HealthCheckResult, "
                f"got {self.checks!r} ({type(self.checks).__name__})"
            )
        for index, check in enumerate(self.checks):
            if not isinstance(check, HealthCheckResult):
                raise TypeError(
                    f"{owner}.checks[{index}] must be a HealthCheckResult, got {check!r} ({type(check).__name__})"
                )
        _text(owner, "version", self.version)
        object.__setattr__(self, "uptime_seconds", _amount(owner, "uptime_seconds", self.uptime_seconds))
        _moment(owner, self.timestamp)

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
        component, each a list of one object (more when several results share
        a name) with ``status``, ``time``,
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
                    entry["observedUnit"] = _text_of(check.details["observed_unit"])
            if check.status in (HealthStatus.UNHEALTHY, HealthStatus.DEGRADED) and check.message:
                entry["output"] = check.message
            # The format keys by component and holds a list: two results sharing a name both stay.
            checks.setdefault(check.name, []).append(entry)
        return {
            "status": _HEALTH_JSON[self.status],
            "version": self.version,
            "checks": checks,
        }


# Deeper details are cut: json.dumps itself would hit the recursion limit.
_MAX_DEPTH = 64
# Decimal digits of larger ints exceed Python's int-to-str limit (4300 digits).
_MAX_INT_BITS = 8192


# TypeGuards rather than isinstance(): isinstance() would leave the items
# unknown to a type checker, and so _jsonable's whole result.
def _is_container(value: object) -> TypeGuard[Collection[Any]]:
    return isinstance(value, (Mapping, list, tuple, set, frozenset))


def _is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    return isinstance(value, Mapping)


def _text_of(value: object) -> str:
    """``str(value)``, or a name for the value when its ``__str__`` fails."""
    try:
        return str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _jsonable(value: Any, _path: tuple[int, ...] = ()) -> Any:
    """``value`` as JSON can hold it, so a report always renders.

    Anything JSON cannot hold becomes its ``str``: an object, a date, a
    non-finite float (``"nan"``, ``"inf"``), a key that is not a string. A
    container met again inside itself becomes ``"<cycle>"``, and one nested
    deeper than 64 levels ``"<too deep>"``.
    """
    try:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, enum.Enum):
            return _jsonable(value.value, _path)
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            return value.isoformat()
        if _is_container(value):
            if id(value) in _path:
                return "<cycle>"
            if len(_path) >= _MAX_DEPTH:
                return "<too deep>"
            inner = (*_path, id(value))
            if _is_mapping(value):
                return {
                    (key if isinstance(key, str) else _text_of(key)): _jsonable(item, inner)
                    for key, item in value.items()
                }
            return [_jsonable(item, inner) for item in value]
        return _text_of(value)
    except Exception as exc:  # a mapping whose items() fails, a set that changes while read...
        return f"<unrenderable {type(value).__name__}: {type(exc).__name__}>"
