"""The health-check manager, its results and its JSON renderings (run on both cores)."""

from __future__ import annotations

import asyncio
import datetime
import gc
import inspect
import json
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref
from types import ModuleType
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


@pytest.mark.parametrize("value", [42, "ok", [1, 2], 0.5, b"pong", object])
def test_any_other_true_value_passes_and_is_kept(value: Any) -> None:
    health = hardy.HealthCheck()
    health.register("check")(lambda: value)
    result = run(health.run_check("check"))
    assert result.status is HealthStatus.HEALTHY
    assert result.message == ""
    assert result.details == {"value": value}
    json.dumps(result.to_dict())


@pytest.mark.parametrize("value", [0, "", [], 0.0, b"", {1: 2}.keys() - {1}])
def test_any_other_false_value_fails_and_is_kept(value: Any) -> None:
    # Judged by its truth value, as a bool is (issue 13): 0 and "" are failures.
    health = hardy.HealthCheck()
    health.register("check")(lambda: value)
    result = run(health.run_check("check"))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == f"check returned {value!r}, which is false"
    assert result.details == {"value": value}
    json.dumps(result.to_dict())


def test_a_value_without_a_truth_value_is_an_unusable_result() -> None:
    class Undecided:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous")

    health = hardy.HealthCheck()
    health.register("check")(Undecided)
    result = run(health.run_check("check"))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == "check returned an unusable Undecided: ValueError: ambiguous"


@pytest.mark.parametrize(
    ("value", "status"),
    [("unhealthy", HealthStatus.UNHEALTHY), ("degraded", HealthStatus.DEGRADED), ("unknown", HealthStatus.UNKNOWN)],
)
def test_a_returned_status_value_reads_as_that_status(value: str, status: HealthStatus) -> None:
    health = hardy.HealthCheck()
    health.register("check")(lambda: value)
    result = run(health.run_check("check"))
    assert result.status is status
    assert result.details == {}


def test_an_unknown_dict_status_is_unknown() -> None:
    health = hardy.HealthCheck()
    health.register("odd")(lambda: {"status": "splendid"})
    odd = run(health.run_check("odd"))
    assert odd.status is HealthStatus.UNKNOWN
    assert "splendid" in odd.message


def test_a_sync_check_returning_a_coroutine_is_refused_and_the_coroutine_closed() -> None:
    health = hardy.HealthCheck()
    made: list[Any] = []

    async def ping() -> bool:
        return True

    def check() -> Any:
        made.append(ping())
        return made[-1]

    health.register("lazy")(check)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail the test
        result = run(health.run_check("lazy"))
        gc.collect()
    assert result.status is HealthStatus.UNHEALTHY
    assert (
        result.message
        == "check returned an awaitable (coroutine) instead of a result; await it inside an async def check"
    )
    assert inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED


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
    # Not the overall status: every live breaker is listed, and another test's may still be open.
    assert {result.name: result for result in report.checks}["process"].status is HealthStatus.HEALTHY
    assert "payments" not in report.checks[0].details["breakers"]
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


# -- results validate their fields ---------------------------------------------------------------------------

NAIVE = datetime.datetime(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"name": 3}, TypeError, "HealthCheckResult.name must be a str, got 3"),
        ({"name": ""}, ValueError, "HealthCheckResult.name must be a non-empty str, got ''"),
        ({"status": "bogus"}, ValueError, "HealthCheckResult.status must be a HealthStatus or one of its values"),
        ({"status": "UNHEALTHY"}, ValueError, "got 'UNHEALTHY'"),
        ({"status": None}, TypeError, "HealthCheckResult.status must be a HealthStatus, got None"),
        ({"status": True}, TypeError, "HealthCheckResult.status must be a HealthStatus, got True"),
        ({"message": None}, TypeError, "HealthCheckResult.message must be a str, got None"),
        ({"latency_ms": -1.0}, ValueError, "HealthCheckResult.latency_ms must be a finite number >= 0, got -1.0"),
        ({"latency_ms": float("nan")}, ValueError, "HealthCheckResult.latency_ms must be a finite number >= 0"),
        ({"latency_ms": float("inf")}, ValueError, "HealthCheckResult.latency_ms must be a finite number >= 0"),
        ({"latency_ms": 10**400}, ValueError, "HealthCheckResult.latency_ms must be a finite number >= 0"),
        ({"latency_ms": "1"}, TypeError, "HealthCheckResult.latency_ms must be a number, got '1'"),
        ({"latency_ms": True}, TypeError, "HealthCheckResult.latency_ms must be a number, got True"),
        ({"details": None}, TypeError, "HealthCheckResult.details must be a mapping, got None"),
        ({"details": [("a", 1)]}, TypeError, "HealthCheckResult.details must be a mapping"),
        ({"timestamp": NAIVE}, ValueError, "HealthCheckResult.timestamp must be timezone-aware"),
        ({"timestamp": "2026-01-01"}, TypeError, "HealthCheckResult.timestamp must be a datetime, got '2026-01-01'"),
        ({"timestamp": datetime.date(2026, 1, 1)}, TypeError, "HealthCheckResult.timestamp must be a datetime"),
        ({"critical": 1}, TypeError, "HealthCheckResult.critical must be a bool, got 1"),
    ],
)
def test_health_check_result_refuses_bad_fields(fields: dict[str, Any], error: type[Exception], match: str) -> None:
    arguments: dict[str, Any] = {"name": "db", "status": HealthStatus.HEALTHY, **fields}
    with pytest.raises(error, match=match.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        HealthCheckResult(**arguments)


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"status": "sick"}, ValueError, "SystemHealth.status must be a HealthStatus or one of its values"),
        ({"status": 1}, TypeError, "SystemHealth.status must be a HealthStatus, got 1"),
        ({"checks": None}, TypeError, "SystemHealth.checks must be a list or tuple of HealthCheckResult, got None"),
        ({"checks": iter([])}, TypeError, "SystemHealth.checks must be a list or tuple of HealthCheckResult"),
        ({"checks": ["db"]}, TypeError, r"SystemHealth.checks\[0\] must be a HealthCheckResult, got 'db'"),
        ({"version": 2}, TypeError, "SystemHealth.version must be a str, got 2"),
        ({"uptime_seconds": -0.5}, ValueError, "SystemHealth.uptime_seconds must be a finite number >= 0, got -0.5"),
        ({"uptime_seconds": float("nan")}, ValueError, "SystemHealth.uptime_seconds must be a finite number >= 0"),
        ({"uptime_seconds": None}, TypeError, "SystemHealth.uptime_seconds must be a number, got None"),
        ({"timestamp": NAIVE}, ValueError, "SystemHealth.timestamp must be timezone-aware"),
        ({"timestamp": 0}, TypeError, "SystemHealth.timestamp must be a datetime, got 0"),
    ],
)
def test_system_health_refuses_bad_fields(fields: dict[str, Any], error: type[Exception], match: str) -> None:
    arguments: dict[str, Any] = {"status": HealthStatus.HEALTHY, "checks": [], **fields}
    with pytest.raises(error, match=match):
        hardy.SystemHealth(**arguments)


def test_a_status_given_as_its_value_is_stored_as_the_member() -> None:
    result = HealthCheckResult("db", "unhealthy")  # type: ignore[arg-type]
    assert result.status is HealthStatus.UNHEALTHY
    system = hardy.SystemHealth("degraded", (result,))  # type: ignore[arg-type]
    assert system.status is HealthStatus.DEGRADED
    assert system.to_dict()["checks"][0]["status"] == "unhealthy"


def test_results_normalise_and_copy_what_they_are_given() -> None:
    details = {"pool": 3}
    moment = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    result = HealthCheckResult("db", HealthStatus.HEALTHY, latency_ms=3, details=details, timestamp=moment)
    details["pool"] = 99
    assert result.details == {"pool": 3}
    assert isinstance(result.latency_ms, float)
    assert result.timestamp == moment
    assert hardy.SystemHealth(HealthStatus.HEALTHY, [], uptime_seconds=2).uptime_seconds == 2.0


def test_a_critical_check_returning_a_status_string_makes_the_system_unhealthy_and_renders() -> None:
    health = hardy.HealthCheck()
    health.register("db", critical=True)(lambda: HealthCheckResult("db", "unhealthy"))  # type: ignore[arg-type]
    report = health.run_all_sync()
    assert report.status is HealthStatus.UNHEALTHY
    assert json.loads(json.dumps(report.to_dict()))["checks"][0]["status"] == "unhealthy"
    assert report.to_health_json()["status"] == "fail"


def test_a_check_whose_result_cannot_be_built_is_unhealthy_naming_the_problem() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    health = hardy.HealthCheck()
    health.register("bad_status", critical=True)(lambda: HealthCheckResult("db", "sick"))  # type: ignore[arg-type]
    health.register("bad_latency")(lambda: HealthCheckResult("db", HealthStatus.HEALTHY, latency_ms=-1))
    health.register("bad_message")(lambda: {"healthy": True, "message": Unprintable()})
    report = health.run_all_sync()
    checks = {result.name: result for result in report.checks}
    assert report.status is HealthStatus.UNHEALTHY
    assert checks["bad_status"].status is HealthStatus.UNHEALTHY
    assert checks["bad_status"].message.startswith("ValueError: HealthCheckResult.status must be a HealthStatus")
    assert "'sick'" in checks["bad_status"].message
    assert checks["bad_latency"].status is HealthStatus.UNHEALTHY
    assert "latency_ms must be a finite number >= 0, got -1" in checks["bad_latency"].message
    assert checks["bad_message"].status is HealthStatus.UNHEALTHY
    assert checks["bad_message"].message == "check returned an unusable dict: RuntimeError: no str"
    json.dumps(report.to_dict())
    json.dumps(report.to_health_json())


def test_any_details_render_as_strict_json() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    cycle: list[Any] = [1]
    cycle.append(cycle)
    deep: list[Any] = []
    for _ in range(500):
        deep = [deep]
    details = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "cycle": cycle,
        "deep": deep,
        "odd": Unprintable(),
        "huge": 10**5000,
        7: "an int key",
        (1, 2): "a tuple key",
        "when": datetime.time(12, 30),
        "status": HealthStatus.DEGRADED,
        "set": {3},
    }
    result = HealthCheckResult("db", HealthStatus.HEALTHY, details=details)
    report = hardy.SystemHealth(HealthStatus.HEALTHY, [result])
    rendered = json.loads(json.dumps(report.to_dict(), allow_nan=False))["checks"][0]["details"]
    assert rendered["nan"] == "nan"
    assert rendered["inf"] == "-inf"
    assert rendered["cycle"] == [1, "<cycle>"]
    assert "<too deep>" in json.dumps(rendered["deep"])
    assert rendered["odd"] == "<unprintable Unprintable: RuntimeError>"
    assert rendered["huge"] == "<int of 16610 bits>"
    assert rendered["7"] == "an int key"
    assert rendered["(1, 2)"] == "a tuple key"
    assert rendered["when"] == "12:30:00"
    assert rendered["status"] == "degraded"
    assert rendered["set"] == [3]
    json.dumps(report.to_health_json(), allow_nan=False)


def test_health_json_keeps_results_that_share_a_name() -> None:
    first = HealthCheckResult("db", HealthStatus.HEALTHY)
    second = HealthCheckResult("db", HealthStatus.UNHEALTHY, "replica down")
    data = hardy.SystemHealth(HealthStatus.DEGRADED, [first, second]).to_health_json()
    assert [entry["status"] for entry in data["checks"]["db"]] == ["pass", "fail"]


# -- an abandoned check holds nobody -------------------------------------------------------------------------


def test_sync_checks_run_on_daemon_threads_at_most_max_workers() -> None:
    health = hardy.HealthCheck(max_workers=1)
    for index in range(3):
        health.register(f"c{index}")(
            lambda: {"daemon": threading.current_thread().daemon, "thread": threading.get_ident()}
        )
    report = health.run_all_sync()
    assert all(result.details["daemon"] is True for result in report.checks)
    assert len({result.details["thread"] for result in report.checks}) == 1


def test_run_all_sync_returns_while_an_abandoned_sync_check_still_runs() -> None:
    health = hardy.HealthCheck()
    release = threading.Event()
    calls = 0
    finished = threading.Event()

    @health.register("stuck", timeout=0.1, critical=True)
    def stuck() -> bool:
        nonlocal calls
        calls += 1
        release.wait(30)
        finished.set()
        return True

    try:
        first = health.run_all_sync()
        assert first.status is HealthStatus.UNHEALTHY
        assert first.checks[0].message == "timed out after 0.1s"
        assert not finished.is_set()  # returned while the check was still running
        second = health.run_all_sync()
        assert second.checks[0].message == "timed out after 0.1s"
        assert calls == 1  # the second probe waited for the run still going instead of starting another
    finally:
        release.set()
    assert finished.wait(10)
    # The run finished: the next probe starts a new one.
    assert health.run_all_sync().status is HealthStatus.HEALTHY
    assert calls == 2


def test_a_probe_that_finds_a_run_going_gets_its_result() -> None:
    health = hardy.HealthCheck()
    started = threading.Event()
    release = threading.Event()
    calls = 0

    @health.register("slow", timeout=20)
    def slow() -> str:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(20)
        return "done"

    reports: list[hardy.SystemHealth] = []
    probes = [threading.Thread(target=lambda: reports.append(health.run_all_sync())) for _ in range(3)]
    probes[0].start()
    assert started.wait(10)
    for probe in probes[1:]:
        probe.start()
    run_going = health._checks["slow"].running
    assert run_going is not None
    deadline = time.monotonic() + 10
    while len(run_going._waiters) < 3 and time.monotonic() < deadline:  # the later probes joined the run
        time.sleep(0.01)
    release.set()
    for probe in probes:
        probe.join(30)
    assert calls == 1
    assert [report.checks[0].details for report in reports] == [{"value": "done"}] * 3


def test_run_all_sync_does_not_wait_for_the_default_executor() -> None:
    health = hardy.HealthCheck()
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> None:
        release.wait(30)
        finished.set()

    @health.register("offloaded", timeout=0.1)
    async def offloaded() -> bool:
        await asyncio.to_thread(blocking)
        return True

    try:
        report = health.run_all_sync()
        assert report.checks[0].message == "timed out after 0.1s"
        assert not finished.is_set()  # asyncio.run would have joined the to_thread worker first
    finally:
        release.set()
    assert finished.wait(10)


# -- every live breaker is seen --------------------------------------------------------------------------------


def _breaker_check() -> HealthCheckResult:
    health = hardy.register_default_checks(hardy.HealthCheck())
    return run(health.run_check("circuit_breakers"))


def test_default_check_sees_a_breaker_made_directly() -> None:
    breaker = hardy.CircuitBreaker("direct-payments", failure_threshold=1, reset_timeout=30)
    assert "direct-payments" not in _breaker_check().details["breakers"]
    breaker.record_failure(ValueError("down"))
    result = _breaker_check()
    assert result.status is HealthStatus.DEGRADED
    assert "direct-payments (open)" in result.message
    info = result.details["breakers"]["direct-payments"]
    assert info == {
        "name": "direct-payments",
        "state": "open",
        "time_until_reset": info["time_until_reset"],
        "registered": False,
    }
    assert 0 < info["time_until_reset"] <= 30


def test_default_check_is_degraded_by_a_breaker_forced_open_or_disabled() -> None:
    breaker = hardy.CircuitBreaker("steered", failure_threshold=1, reset_timeout=30)
    for steer, state in ((breaker.force_open, "forced_open"), (breaker.disable, "disabled")):
        steer()
        result = _breaker_check()
        assert result.status is HealthStatus.DEGRADED
        assert f"steered ({state})" in result.message
        assert result.details["breakers"]["steered"]["state"] == state
    breaker.reset()
    assert "steered" not in _breaker_check().details["breakers"]


def test_breakers_sharing_a_name_are_all_listed() -> None:
    registered = hardy.registry.get_or_create("twin-payments", failure_threshold=1, reset_timeout=30)
    loose = hardy.CircuitBreaker("twin-payments", failure_threshold=1, reset_timeout=30)
    loose.record_failure(ValueError("down"))
    registered.record_failure(ValueError("down"))
    breakers = _breaker_check().details["breakers"]
    # Oldest first: the registered one was made first, so it keeps the plain name.
    assert breakers["twin-payments"]["registered"] is True
    assert breakers["twin-payments#2"]["registered"] is False
    assert breakers["twin-payments#2"]["name"] == "twin-payments"
    message = _breaker_check().message
    assert "twin-payments (open)" in message
    assert "twin-payments#2 (open)" in message


def test_a_collected_breaker_is_no_longer_listed_nor_kept_alive() -> None:
    from hardy import _live

    breaker = hardy.CircuitBreaker("short-lived", failure_threshold=1)
    breaker.record_failure(ValueError("down"))
    assert breaker in _live.breakers()
    assert "short-lived" in _breaker_check().details["breakers"]
    ref = weakref.ref(breaker)
    del breaker
    gc.collect()
    assert ref() is None
    assert all(live.name != "short-lived" for live in _live.breakers())
    assert "short-lived" not in _breaker_check().details["breakers"]


def test_live_tracking_holds_objects_by_identity() -> None:
    from hardy import _live

    class EqualToAll:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other: object) -> bool:
            return True

    first, second = EqualToAll(), EqualToAll()
    _live.track(first)
    _live.track(second)
    _live.track(first)  # twice: listed once
    listed = [item for item in _live.breakers() if isinstance(item, EqualToAll)]
    assert len(listed) == 2
    assert listed[0] is first
    assert listed[1] is second


FORK_PROBE = """
import os, sys, threading
import hardy

parent = os.getpid()
release = threading.Event()
health = hardy.HealthCheck()

@health.register("stuck", timeout=0.2)
def stuck() -> bool:
    if os.getpid() == parent:
        release.wait(30)  # abandoned in the parent; its thread does not exist in the child
    return True

assert health.run_all_sync().status is hardy.HealthStatus.DEGRADED
child = os.fork()
if child == 0:
    status = health.run_all_sync().status
    os._exit(0 if status is hardy.HealthStatus.HEALTHY else 1)
_, code = os.waitpid(child, 0)
release.set()
print("child exit", os.waitstatus_to_exitcode(code))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_runs_a_check_its_parent_abandoned(core: ModuleType) -> None:
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child exit 0"


def test_idle_health_workers_exit_and_new_jobs_still_run() -> None:
    # A worker with nothing to do leaves (a manager made and dropped holds no
    # threads for ever); the next job starts a new one.
    from hardy.health._workers import Workers

    workers = Workers(2, "hardy-health-test", idle_timeout=0.05)
    done = [threading.Event() for _ in range(3)]
    workers.submit(done[0].set)
    workers.submit(done[1].set)
    assert done[0].wait(10)
    assert done[1].wait(10)
    deadline = time.monotonic() + 10
    while workers.threads:
        assert time.monotonic() < deadline, "idle workers did not exit"
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name.startswith("hardy-health-test")]
    workers.submit(done[2].set)
    assert done[2].wait(10)


def test_jobs_queued_as_a_worker_times_out_are_never_stranded() -> None:
    from hardy.health._workers import Workers

    workers = Workers(1, "hardy-health-race", idle_timeout=0.001)
    for _ in range(300):  # submit around the moment the lone worker gives up
        event = threading.Event()
        workers.submit(event.set)
        assert event.wait(10), "a job was queued with no worker to run it"
        time.sleep(0.001)
