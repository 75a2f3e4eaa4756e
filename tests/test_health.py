"""The health-check manager, its results and its JSON renderings (run on both cores)."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time
from typing import Any

import pytest

import hardy
from hardy import HealthCheckResult, HealthStatus


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- what a check may return ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (None, HealthStatus.HEALTHY, ""),
        (True, HealthStatus.HEALTHY, ""),
        (False, HealthStatus.UNHEALTHY, "check returned False"),
        (HealthStatus.DEGRADED, HealthStatus.DEGRADED, ""),
        ({"healthy": False, "message": "down", "pool": 3}, HealthStatus.UNHEALTHY, "down"),
        ({"status": "degraded", "message": "slow"}, HealthStatus.DEGRADED, "slow"),
        ({"status": HealthStatus.HEALTHY}, HealthStatus.HEALTHY, ""),
        ({"pool": 3}, HealthStatus.HEALTHY, ""),
        (HealthCheckResult("other", HealthStatus.DEGRADED, "from a result"), HealthStatus.DEGRADED, "from a result"),
    ],
)
def test_every_return_shape(value: Any, status: HealthStatus, message: str) -> None:
    health = hardy.HealthCheck()

    @health.register("check")
    def check() -> Any:
        return value

    result = run(health.run_check("check"))
    assert result.name == "check"
    assert result.status is status
    assert result.message == message
    assert result.latency_ms >= 0.0
    assert result.timestamp.tzinfo is datetime.timezone.utc
    if isinstance(value, dict) and "pool" in value:
        assert result.details == {"pool": 3}


def test_unsupported_return_and_unknown_status() -> None:
    health = hardy.HealthCheck()
    health.register("number")(lambda: 42)
    health.register("odd")(lambda: {"status": "splendid"})
    assert run(health.run_check("number")).status is HealthStatus.UNHEALTHY
    assert "returned int" in run(health.run_check("number")).message
    odd = run(health.run_check("odd"))
    assert odd.status is HealthStatus.UNKNOWN
    assert "splendid" in odd.message


def test_exceptions_and_unknown_names() -> None:
    health = hardy.HealthCheck()

    @health.register("broken")
    async def broken() -> bool:
        raise ConnectionError("refused")

    result = run(health.run_check("broken"))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == "ConnectionError: refused"
    missing = run(health.run_check("missing"))
    assert missing.status is HealthStatus.UNKNOWN


def test_register_returns_the_function_unchanged_and_refuses_duplicates() -> None:
    health = hardy.HealthCheck()

    def check() -> bool:
        return True

    assert health.register("x")(check) is check
    with pytest.raises(ValueError, match="'x' is already registered"):
        health.register("x")(check)
    assert health.names == ("x",)


# -- timeouts, concurrency ------------------------------------------------------------------


def test_timeouts_sync_and_async_never_block_the_result() -> None:
    health = hardy.HealthCheck()
    release = threading.Event()

    @health.register("stuck_sync", timeout=0.1)
    def stuck_sync() -> bool:
        release.wait(10)
        return True

    @health.register("stuck_async", timeout=0.1)
    async def stuck_async() -> bool:
        await asyncio.sleep(10)
        return True

    started = time.monotonic()
    report = run(health.run_all())
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 5.0
    for result in report.checks:
        assert result.status is HealthStatus.UNHEALTHY
        assert result.message == "timed out after 0.1s"


def test_checks_run_concurrently() -> None:
    health = hardy.HealthCheck(max_workers=4)
    for index in range(3):
        health.register(f"sync{index}")(lambda: time.sleep(0.3))

        async def slow() -> None:
            await asyncio.sleep(0.3)

        health.register(f"async{index}")(slow)
    started = time.monotonic()
    report = run(health.run_all())
    elapsed = time.monotonic() - started
    assert all(result.status is HealthStatus.HEALTHY for result in report.checks)
    assert elapsed < 6 * 0.3 * 0.8  # far from the sum of the six checks


# -- aggregation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "overall"),
    [
        ([], HealthStatus.HEALTHY),
        ([(True, False), (True, True)], HealthStatus.HEALTHY),
        ([(False, False), (True, True)], HealthStatus.DEGRADED),
        ([(HealthStatus.DEGRADED, True)], HealthStatus.DEGRADED),
        ([(HealthStatus.UNKNOWN, False)], HealthStatus.DEGRADED),
        ([(False, True), (True, False)], HealthStatus.UNHEALTHY),
    ],
)
def test_aggregation_by_criticality(checks: list[tuple[Any, bool]], overall: HealthStatus) -> None:
    health = hardy.HealthCheck(version="9.9")
    for index, (value, critical) in enumerate(checks):
        health.register(f"c{index}", critical=critical)(lambda value=value: value)
    report = run(health.run_all())
    assert report.status is overall
    assert report.version == "9.9"
    assert [result.critical for result in report.checks] == [critical for _, critical in checks]


def test_readiness_runs_only_critical_checks() -> None:
    health = hardy.HealthCheck()
    health.register("critical", critical=True)(lambda: True)
    health.register("optional")(lambda: False)
    ready = run(health.run_critical())
    assert [result.name for result in ready.checks] == ["critical"]
    assert ready.status is HealthStatus.HEALTHY


# -- caching and single flight ------------------------------------------------------------------


def test_cache_ttl_reuses_results() -> None:
    health = hardy.HealthCheck()
    calls = 0

    @health.register("cached", cache_ttl=60)
    def cached() -> bool:
        nonlocal calls
        calls += 1
        return True

    for _ in range(5):
        run(health.run_check("cached"))
    assert calls == 1


def test_a_storm_of_probes_runs_each_check_once() -> None:
    health = hardy.HealthCheck()
    calls = 0

    @health.register("slow")
    async def slow() -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return True

    async def storm() -> list[Any]:
        return await asyncio.gather(*(health.run_all() for _ in range(50)))

    reports = run(storm())
    assert calls == 1
    assert all(report.status is HealthStatus.HEALTHY for report in reports)


# -- sync entry point -----------------------------------------------------------------------------


def test_run_all_sync_from_plain_code_and_inside_a_loop() -> None:
    health = hardy.HealthCheck()
    health.register("ok")(lambda: True)
    assert health.run_all_sync().status is HealthStatus.HEALTHY

    async def inside() -> HealthStatus:
        return health.run_all_sync().status

    assert run(inside()) is HealthStatus.HEALTHY


def test_process_wide_health_check_is_created_once() -> None:
    instances = []
    threads = [threading.Thread(target=lambda: instances.append(hardy.get_health_check())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(instance) for instance in instances}) == 1
    assert instances[0] is hardy.get_health_check()


# -- default checks ----------------------------------------------------------------------------------


def test_default_checks_report_open_breakers_and_the_process() -> None:
    health = hardy.register_default_checks(hardy.HealthCheck())
    report = run(health.run_all())
    assert report.status is HealthStatus.HEALTHY
    breaker = hardy.registry.get_or_create("payments", failure_threshold=1, reset_timeout=30)
    breaker.record_failure(ValueError("down"))
    report = run(health.run_all())
    checks = {result.name: result for result in report.checks}
    assert report.status is HealthStatus.DEGRADED
    assert checks["circuit_breakers"].status is HealthStatus.DEGRADED
    assert "payments (open)" in checks["circuit_breakers"].message
    info = checks["circuit_breakers"].details["breakers"]["payments"]
    assert info["state"] == "open"
    assert 0 < info["time_until_reset"] <= 30
    process = checks["process"].details
    assert process["threads"] >= 1
    assert process["uptime_seconds"] >= 0
    assert process["resident_memory_bytes"] is None or process["resident_memory_bytes"] > 0
    assert not checks["process"].critical
    assert not checks["circuit_breakers"].critical


# -- renderings ------------------------------------------------------------------------------------------


def _report() -> hardy.SystemHealth:
    health = hardy.HealthCheck(version="1.2.3")
    health.register("db", critical=True)(lambda: {"healthy": True, "observed_value": 12, "observed_unit": "ms"})
    health.register("cache")(lambda: {"healthy": False, "message": "cache unreachable", "since": datetime.date.today()})
    return run(health.run_all())


def test_to_dict_shape_and_json() -> None:
    data = _report().to_dict()
    json.dumps(data)
    assert set(data) == {"status", "version", "uptime_seconds", "timestamp", "checks"}
    assert data["status"] == "degraded"
    assert data["version"] == "1.2.3"
    datetime.datetime.fromisoformat(data["timestamp"])
    for check in data["checks"]:
        assert set(check) == {"name", "status", "message", "latency_ms", "details", "timestamp", "critical"}
        assert isinstance(check["latency_ms"], float)
        assert isinstance(check["critical"], bool)
    cache = next(check for check in data["checks"] if check["name"] == "cache")
    assert isinstance(cache["details"]["since"], str)


def test_to_health_json_shape() -> None:
    data = _report().to_health_json()
    json.dumps(data)
    assert data["status"] == "warn"
    assert data["version"] == "1.2.3"
    assert set(data["checks"]) == {"db", "cache"}
    db = data["checks"]["db"][0]
    assert db["status"] == "pass"
    assert db["observedValue"] == 12
    assert db["observedUnit"] == "ms"
    assert "output" not in db
    cache = data["checks"]["cache"][0]
    assert cache["status"] == "fail"
    assert cache["output"] == "cache unreachable"
    datetime.datetime.fromisoformat(cache["time"])


# -- validation ---------------------------------------------------------------------------------------------


def test_bad_arguments() -> None:
    health = hardy.HealthCheck()
    with pytest.raises(ValueError, match="name must not be empty"):
        health.register("")
    with pytest.raises(TypeError, match="name must be a str"):
        health.register(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a finite number > 0, got 0"):
        health.register("x", timeout=0)
    with pytest.raises(TypeError, match="critical must be a bool"):
        health.register("x", critical="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_ttl must be a finite number >= 0"):
        health.register("x", cache_ttl=-1)
    with pytest.raises(TypeError, match="func must be callable"):
        health.register("x")(5)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="version must be a str"):
        hardy.HealthCheck(version=2)  # type: ignore[arg-type]
