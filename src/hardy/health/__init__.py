"""Health checks: a manager that runs checks concurrently, and its results.

Example::

    health = hardy.HealthCheck(version="2.1.0")

    @health.register("database", timeout=2.0, critical=True)
    async def database() -> bool:
        return await db.ping()

    hardy.register_default_checks(health)
    report = health.run_all_sync()
    print(report.status, report.to_dict())
"""

from __future__ import annotations

from .defaults import register_default_checks
from .http import asgi_app, wsgi_app
from .manager import HealthCheck, get_health_check
from .results import HealthCheckResult, HealthStatus, SystemHealth

__all__ = [
    "HealthCheck",
    "HealthCheckResult",
    "HealthStatus",
    "SystemHealth",
    "asgi_app",
    "get_health_check",
    "register_default_checks",
    "wsgi_app",
]
