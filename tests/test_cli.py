"""``python -m hardy``, run in a subprocess with the core under test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import hardy
from hardy.demo import FlakyDependency, run_demo

ROOT = Path(__file__).resolve().parent.parent


def run(core: ModuleType, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "hardy", *args], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )


def test_version_names_the_active_core(core: ModuleType) -> None:
    result = run(core, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hardy {hardy.__version__} (core: {core.IMPLEMENTATION})"


SUMMARY_KEYS = (
    "calls",
    "successes",
    "fallbacks",
    "timeouts",
    "rejections",
    "retries",
    "times opened",
    "outages",
    "p50 latency",
    "p99 latency",
)


def test_demo_prints_state_changes_and_a_summary(core: ModuleType) -> None:
    result = run(core, "demo", "--seconds", "0.6")
    assert result.returncode == 0, result.stderr
    assert f"core: {core.IMPLEMENTATION}" in result.stdout
    assert "closed -> open" in result.stdout
    assert "open -> half_open" in result.stdout
    assert "  0.000s  dependency: outage begins" in result.stdout
    assert "  0.400s  dependency: outage ends" in result.stdout
    assert "outage from 0.000s to 0.400s" in result.stdout
    for key in SUMMARY_KEYS:
        assert key in result.stdout


def test_demo_shorter_than_one_call_still_reports(core: ModuleType) -> None:
    # Once a StatisticsError: no percentile of fewer than two latencies.
    result = run(core, "demo", "--seconds", "0.001")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    calls = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["calls"]]
    assert len(calls) == 1
    assert int(calls[0][1]) >= 1
    assert "0.000s  dependency: outage begins" in result.stdout
    for key in SUMMARY_KEYS:
        assert key in result.stdout


def test_demo_counts_the_timeouts_that_fired() -> None:
    # Every call is a latency spike longer than the 20 ms timeout, and there is no outage.
    dependency = FlakyDependency(outage_length=0.0, spike_rate=1.0, spike_seconds=0.5, failure_rate=0.0)
    lines: list[str] = []
    summary = run_demo(0.05, out=lines.append, dependency=dependency)
    assert summary["calls"] >= 1
    assert summary["timeouts"] == summary["calls"] == summary["fallbacks"]
    assert summary["successes"] == 0
    assert summary["outages"] == 0
    assert not any("dependency: outage" in line or "outage from" in line for line in lines)
    assert ["timeouts", str(summary["timeouts"])] in [line.split() for line in lines]


def test_demo_reports_when_each_outage_began_and_ended() -> None:
    # Outages from 0.0 s to 0.1 s, 0.2 s to 0.3 s, and so on. The run takes
    # 0.25 s unless a pause (a full collection of the test session's heap)
    # holds its last call up: so every edge up to the end it reached must be
    # reported, once and in order, and at least the three before 0.25 s.
    dependency = FlakyDependency(outage_every=0.2, outage_length=0.1, spike_rate=0.0, failure_rate=0.0)
    lines: list[str] = []
    summary = run_demo(0.25, out=lines.append, dependency=dependency)
    events = [line.strip() for line in lines if "dependency: outage" in line]
    assert len(events) >= 3
    assert events == [f"{0.1 * k:.3f}s  dependency: outage {'ends' if k % 2 else 'begins'}" for k in range(len(events))]
    assert summary["outages"] == (len(events) + 1) // 2
    for k in range(0, len(events), 2):
        if k + 1 < len(events):
            assert f"  outage from {0.1 * k:.3f}s to {0.1 * (k + 1):.3f}s" in lines
        else:
            assert any(line.startswith(f"  outage from {0.1 * k:.3f}s, still going at the end (") for line in lines)


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), "1", True])
def test_run_demo_rejects_a_bad_duration(seconds: object) -> None:
    with pytest.raises(ValueError, match="seconds must be a number > 0, got"):
        run_demo(seconds, out=lambda line: None)  # type: ignore[arg-type]


def test_demo_rejects_a_bad_duration(core: ModuleType) -> None:
    result = run(core, "demo", "--seconds", "0")
    assert result.returncode == 2
    assert "--seconds must be > 0, got 0.0" in result.stderr


# -- python -m hardy health --------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "flags", "code", "expected"),
    [
        ("tests.health_targets:healthy", [], 0, "overall: healthy"),
        ("tests.health_targets:factory", [], 0, "overall: healthy"),
        ("tests.health_targets:degraded", [], 0, "optional down"),
        ("tests.health_targets:degraded", ["--strict"], 1, "overall: degraded"),
        ("tests.health_targets:unhealthy", [], 2, "database down"),
    ],
)
def test_health_command_exit_codes(core: ModuleType, target: str, flags: list[str], code: int, expected: str) -> None:
    result = run(core, "health", target, *flags)
    assert result.returncode == code, result.stderr
    assert expected in result.stdout
    assert "CHECK" in result.stdout
    assert "STATUS" in result.stdout
    assert "LATENCY" in result.stdout


def test_health_command_json(core: ModuleType) -> None:
    import json

    result = run(core, "health", "tests.health_targets:unhealthy", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["status"] == "unhealthy"
    assert data["checks"][0]["message"] == "database down"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected module:object, got 'no_colon'"),
        ("tests.missing_module:x", "cannot import 'tests.missing_module'"),
        ("tests.health_targets:missing", "has no attribute 'missing'"),
        ("tests.health_targets:not_a_check", "is not a HealthCheck"),
        ("tests.health_targets:broken_factory", "raised RuntimeError: factory failed"),
    ],
)
def test_health_command_target_errors(core: ModuleType, target: str, message: str) -> None:
    result = run(core, "health", target)
    assert result.returncode == 3
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    debug = run(core, "health", target, "--debug")
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr


# -- the probe exits within its checks' timeouts -------------------------------------------------------

ABANDONED_CHECKS = """
import asyncio
import atexit
import threading
import time

import hardy

sync_sleeper = hardy.HealthCheck()
sync_sleeper.register("db", timeout=0.2, critical=True)(lambda: time.sleep(8))

async def offloaded() -> bool:
    await asyncio.to_thread(time.sleep, 8)  # the default executor's thread keeps sleeping
    return True

async_offloader = hardy.HealthCheck()
async_offloader.register("db", timeout=0.2, critical=True)(offloaded)

own_thread = hardy.HealthCheck()

def spawns() -> bool:
    worker = threading.Thread(target=time.sleep, args=(8,))  # not a daemon: joined at exit
    worker.start()
    worker.join()
    return True

own_thread.register("db", timeout=0.2, critical=True)(spawns)

quick = hardy.HealthCheck()
quick.register("ok")(lambda: True)
atexit.register(lambda: print("atexit ran", flush=True))
"""


def run_probe(core: ModuleType, tmp_path: Path, target: str) -> tuple[subprocess.CompletedProcess[str], float]:
    (tmp_path / "abandoned_checks.py").write_text(ABANDONED_CHECKS)
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")]))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "hardy", "health", f"abandoned_checks:{target}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize("target", ["sync_sleeper", "async_offloader", "own_thread"])
def test_health_probe_exits_when_an_abandoned_check_keeps_running(
    core: ModuleType, tmp_path: Path, target: str
) -> None:
    result, elapsed = run_probe(core, tmp_path, target)
    assert result.returncode == 2, result.stderr
    assert "timed out after 0.2s" in result.stdout
    # A behaviour bound, not a speed target: the check sleeps 8 s, the probe must not wait for it.
    assert elapsed < 4.0


def test_health_probe_still_shuts_down_normally(core: ModuleType, tmp_path: Path) -> None:
    result, _ = run_probe(core, tmp_path, "quick")
    assert result.returncode == 0, result.stderr
    assert "overall: healthy" in result.stdout
    assert result.stdout.rstrip().endswith("atexit ran")  # the process was not cut short
