"""``python -m hardy``, run in a subprocess with the core under test."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import hardy


def run(core: ModuleType, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    return subprocess.run([sys.executable, "-m", "hardy", *args], capture_output=True, text=True, env=env, timeout=60)


def test_version_names_the_active_core(core: ModuleType) -> None:
    result = run(core, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hardy {hardy.__version__} (core: {core.IMPLEMENTATION})"


def test_demo_prints_state_changes_and_a_summary(core: ModuleType) -> None:
    result = run(core, "demo", "--seconds", "0.6")
    assert result.returncode == 0, result.stderr
    assert f"core: {core.IMPLEMENTATION}" in result.stdout
    assert "closed -> open" in result.stdout
    assert "open -> half_open" in result.stdout
    for key in ("calls", "successes", "fallbacks", "rejections", "p99 latency"):
        assert key in result.stdout


def test_demo_rejects_a_bad_duration(core: ModuleType) -> None:
    result = run(core, "demo", "--seconds", "0")
    assert result.returncode == 2
    assert "--seconds must be > 0, got 0.0" in result.stderr
