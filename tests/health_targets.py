"""Health checks for the command-line tests (imported by ``python -m hardy health``)."""

from __future__ import annotations

import hardy

healthy = hardy.HealthCheck(version="1.0")
healthy.register("ok", critical=True)(lambda: True)

degraded = hardy.HealthCheck(version="1.0")
degraded.register("ok", critical=True)(lambda: True)
degraded.register("optional")(lambda: {"healthy": False, "message": "optional down"})

unhealthy = hardy.HealthCheck(version="1.0")
unhealthy.register("database", critical=True)(lambda: {"healthy": False, "message": "database down"})


def factory() -> hardy.HealthCheck:
    return healthy


def broken_factory() -> hardy.HealthCheck:
    raise RuntimeError("factory failed")


not_a_check = 42
