"""Check the wheel workflow's matrix: one job, one architecture, every target covered once.

Reads the ``wheels`` job of ``.github/workflows/wheels.yml`` and, for each
row of its matrix, asks cibuildwheel which wheels that row builds
(``cibuildwheel --print-build-identifiers --platform P --archs A``, with the
project's ``[tool.cibuildwheel]`` configuration; this needs no network and no
Docker). It fails unless:

* each row's runner is one whose native architecture is the row's ``archs``
  (nothing is emulated, so nothing is slow or silently skipped);
* each row builds only wheels of its own platform and architecture, and no
  two rows build the same wheel;
* together the rows build CPython 3.10-3.14 and the free-threaded 3.14t for
  Linux (manylinux and musllinux; x86_64 and aarch64), macOS (x86_64 and
  arm64) and Windows (AMD64 and ARM64), and nothing else;
* each row says how its Redis tests run (``redis``: ``container``, ``brew``
  or ``deselected``), and that matches the configuration: a deselected row's
  test command has ``-m "not redis"``, the others' has not;
* the workflow's cibuildwheel step builds what is checked here (its
  ``CIBW_PLATFORM`` and ``CIBW_ARCHS`` are the row's), with the cibuildwheel
  version used here (``pip install --group release`` installs it).

Usage (Python 3.11 or later, for tomllib)::

    python scripts/check_wheel_matrix.py [--workflow PATH]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent

PYTHONS = ("cp310", "cp311", "cp312", "cp313", "cp314", "cp314t")
PLATFORM_TAGS = {
    ("linux", "x86_64"): ("manylinux_x86_64", "musllinux_x86_64"),
    ("linux", "aarch64"): ("manylinux_aarch64", "musllinux_aarch64"),
    ("macos", "x86_64"): ("macosx_x86_64",),
    ("macos", "arm64"): ("macosx_arm64",),
    ("windows", "AMD64"): ("win_amd64",),
    ("windows", "ARM64"): ("win_arm64",),
}
EXPECTED = {f"{python}-{tag}" for tags in PLATFORM_TAGS.values() for tag in tags for python in PYTHONS}

# GitHub-hosted runner labels and the (platform, architecture) they run natively.
RUNNERS = {
    "ubuntu-latest": ("linux", "x86_64"),
    "ubuntu-24.04": ("linux", "x86_64"),
    "ubuntu-22.04": ("linux", "x86_64"),
    "ubuntu-24.04-arm": ("linux", "aarch64"),
    "ubuntu-22.04-arm": ("linux", "aarch64"),
    "macos-latest": ("macos", "arm64"),
    "macos-14": ("macos", "arm64"),
    "macos-15": ("macos", "arm64"),
    "macos-13": ("macos", "x86_64"),
    "macos-15-intel": ("macos", "x86_64"),
    "windows-latest": ("windows", "AMD64"),
    "windows-2022": ("windows", "AMD64"),
    "windows-2025": ("windows", "AMD64"),
    "windows-11-arm": ("windows", "ARM64"),
}
REDIS_MODES = {"linux": "container", "macos": "brew", "windows": "deselected"}
DESELECT_REDIS = re.compile(r"""-m\s+["']not redis["']""")


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(workflow, dict) or "wheels" not in workflow.get("jobs", {}):
        raise SystemExit(f"{path}: no `wheels` job")
    job: dict[str, Any] = workflow["jobs"]["wheels"]
    return job


def matrix_rows(job: dict[str, Any]) -> list[dict[str, str]]:
    matrix = job.get("strategy", {}).get("matrix", {})
    extra = set(matrix) - {"include"}
    if extra:
        # A cross product (os: [...]) would make rows this check cannot see one by one.
        raise SystemExit(f"the wheels matrix must be a list of `include` rows only, it also has {sorted(extra)}")
    rows = matrix.get("include") or []
    if not rows:
        raise SystemExit("the wheels matrix has no rows")
    return [{key: str(value) for key, value in row.items()} for row in rows]


def cibuildwheel_step(job: dict[str, Any]) -> dict[str, Any]:
    steps = [step for step in job.get("steps", []) if str(step.get("uses", "")).startswith("pypa/cibuildwheel@")]
    if len(steps) != 1:
        raise SystemExit(f"the wheels job must have one pypa/cibuildwheel step, it has {len(steps)}")
    step: dict[str, Any] = steps[0]
    return step


def step_problems(step: dict[str, Any]) -> list[str]:
    """The step must build what this check checks: the row's platform and architecture."""
    env = step.get("env") or {}
    wanted = {"CIBW_PLATFORM": "${{ matrix.platform }}", "CIBW_ARCHS": "${{ matrix.archs }}"}
    return [
        f"the cibuildwheel step must set {key}: {value} (it has {env.get(key)!r})"
        for key, value in wanted.items()
        if str(env.get(key, "")).replace(" ", "") != value.replace(" ", "")
    ]


def build_identifiers(platform: str, archs: str) -> set[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIBW_")}
    result = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform, "--archs", archs],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"cibuildwheel --platform {platform} --archs {archs} failed:\n{result.stderr}")
    return set(result.stdout.split())


def test_command(config: dict[str, Any], platform: str) -> str:
    command = config.get(platform, {}).get("test-command", config.get("test-command", ""))
    return str(command)


def check(rows: list[dict[str, str]], identifiers: list[set[str]], config: dict[str, Any], steps: str) -> list[str]:
    """Every problem with the matrix, as sentences; empty when it is right."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for row, built in zip(rows, identifiers, strict=True):
        name = f"row {row.get('os')} {row.get('platform')} {row.get('archs')}"
        platform, archs = row.get("platform", ""), row.get("archs", "")
        if (platform, archs) not in PLATFORM_TAGS:
            problems.append(f"{name}: platform/archs must be one of {sorted(PLATFORM_TAGS)}")
            continue
        native = RUNNERS.get(row.get("os", ""))
        if native is None:
            problems.append(f"{name}: unknown runner {row.get('os')!r}; add its native architecture to RUNNERS")
        elif native != (platform, archs):
            problems.append(f"{name}: runner {row['os']} runs {native[0]} {native[1]}, not {platform} {archs}")
        tags = PLATFORM_TAGS[(platform, archs)]
        foreign = sorted(ident for ident in built if not ident.endswith(tuple(f"-{tag}" for tag in tags)))
        if foreign:
            problems.append(f"{name}: builds wheels of another platform or architecture: {foreign}")
        if not built:
            problems.append(f"{name}: builds nothing")
        for ident in sorted(built):
            if ident in seen:
                problems.append(f"{ident} is built twice: by {seen[ident]} and by {name}")
            seen[ident] = name
        mode = row.get("redis")
        if mode != REDIS_MODES[platform]:
            problems.append(f"{name}: redis must be {REDIS_MODES[platform]!r} for {platform}, got {mode!r}")
        deselects = bool(DESELECT_REDIS.search(test_command(config, platform)))
        if deselects != (mode == "deselected"):
            problems.append(
                f"{name}: redis is {mode!r} but the {platform} test-command "
                f"{'deselects' if deselects else 'runs'} the Redis tests"
            )
    missing = sorted(EXPECTED - set(seen))
    if missing:
        problems.append(f"no row builds: {missing}")
    unexpected = sorted(set(seen) - EXPECTED)
    if unexpected:
        problems.append(f"wheels outside the targets: {unexpected}")
    if "redis" not in str(config.get("linux", {}).get("before-all", "")):
        problems.append("[tool.cibuildwheel.linux] before-all must install redis-server for the container rows")
    if any(row.get("redis") == "brew" for row in rows) and "brew install redis" not in steps:
        problems.append("the rows with redis: brew need a workflow step that runs `brew install redis`")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", type=Path, default=ROOT / ".github" / "workflows" / "wheels.yml")
    args = parser.parse_args(argv)
    job = load_workflow(args.workflow)
    rows = matrix_rows(job)
    installed = importlib.metadata.version("cibuildwheel")
    step = cibuildwheel_step(job)
    pinned = str(step["uses"]).split("@", 1)[1].lstrip("v")
    if pinned != installed:
        print(f"the workflow pins cibuildwheel {pinned}, this is {installed}: pip install cibuildwheel=={pinned}")
        return 1
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["cibuildwheel"]
    identifiers = [build_identifiers(row.get("platform", ""), row.get("archs", "")) for row in rows]
    for row, built in zip(rows, identifiers, strict=True):
        where = f"{row.get('os')} ({row.get('platform')} {row.get('archs')}, redis: {row.get('redis')})"
        print(f"{where}: {len(built)} wheels")
    problems = step_problems(step) + check(rows, identifiers, config, yaml.safe_dump(job.get("steps", [])))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems:
        return 1
    print(f"wheel matrix OK: {len(rows)} rows, {len(EXPECTED)} wheels, each built once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
