"""The command line: ``python -m hardy``.

* ``python -m hardy health module:object [--json] [--strict] [--debug]`` runs a
  :class:`~hardy.HealthCheck` (or a zero-argument factory returning one) and
  exits 0 when healthy, 1 when degraded with ``--strict`` (else 0), 2 when
  unhealthy, and 3 when the target cannot be loaded: usable as a container
  ``HEALTHCHECK`` or a Kubernetes exec probe. Once it has printed the report
  the process ends within a second, whatever an abandoned check still runs.
* ``python -m hardy demo [--seconds N]`` runs the main job on a simulated flaky
  dependency and prints what happens.
* ``python -m hardy --version`` names the version and the active core.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

from . import IMPLEMENTATION, __version__

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNHEALTHY, EXIT_TARGET_ERROR = 0, 1, 2, 3
# How long the interpreter may take to shut down after the report, before the probe ends it.
EXIT_GRACE_SECONDS = 1.0


class TargetError(Exception):
    """The health target could not be loaded."""


def load_health_check(target: str) -> Any:
    """Import ``module:object`` and return the ``HealthCheck`` it names (calling a factory)."""
    from .health import HealthCheck

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise TargetError(f"expected module:object, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise TargetError(f"{module_name!r} has no attribute {attribute!r}") from exc
    if not isinstance(obj, HealthCheck) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise TargetError(f"{target} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, HealthCheck):
        raise TargetError(f"{target} is not a HealthCheck (nor a factory of one): {obj!r}")
    return obj


def _table(report: Any) -> str:
    rows = [("CHECK", "STATUS", "LATENCY", "MESSAGE")]
    rows += [
        (check.name + (" *" if check.critical else ""), check.status.value, f"{check.latency_ms:.1f} ms", check.message)
        for check in report.checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}" for row in rows]
    lines.append(f"overall: {report.status.value} (version {report.version}; * = critical)")
    return "\n".join(lines)


def _end_process_within(seconds: float, code: int) -> None:
    """End the process with ``code`` if its normal shutdown takes longer than ``seconds``.

    The interpreter joins non-daemon threads at exit: a check that timed out
    but left work in ``asyncio.to_thread``, or threads of its own, would keep
    a container probe alive until that work returned. The normal shutdown
    (atexit handlers, buffered output) still runs when it is quick.
    """

    def expire() -> None:
        time.sleep(seconds)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said anyway
                stream.flush()
        os._exit(code)

    threading.Thread(target=expire, name="hardy-health-exit", daemon=True).start()


def _health_exit_code(args: argparse.Namespace) -> int:
    from .health import HealthStatus

    try:
        health = load_health_check(args.target)
    except TargetError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"hardy health: {exc}", file=sys.stderr)
        return EXIT_TARGET_ERROR
    report = health.run_all_sync()
    print(json.dumps(report.to_dict(), indent=2) if args.json else _table(report))
    if report.status is HealthStatus.UNHEALTHY:
        return EXIT_UNHEALTHY
    if report.status is HealthStatus.HEALTHY:
        return EXIT_HEALTHY
    return EXIT_DEGRADED if args.strict else EXIT_HEALTHY


def health_command(args: argparse.Namespace) -> int:
    """Run ``python -m hardy health`` and return its exit status."""
    code = _health_exit_code(args)
    sys.stdout.flush()
    sys.stderr.flush()
    if __name__ == "__main__":  # run as ``python -m hardy``, not imported (as by the tests)
        _end_process_within(EXIT_GRACE_SECONDS, code)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m hardy", description="hardy: resilience for Python calls")
    parser.add_argument("--version", action="version", version=f"hardy {__version__} (core: {IMPLEMENTATION})")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job on a simulated flaky dependency")
    demo.add_argument("--seconds", type=float, default=3.0, help="how long to run (default: 3)")
    health = commands.add_parser("health", help="run a HealthCheck and exit with its status")
    health.add_argument("target", help="module:object naming a HealthCheck or a zero-argument factory of one")
    health.add_argument("--json", action="store_true", help="print the report as JSON")
    health.add_argument("--strict", action="store_true", help="exit 1 when degraded (default: 0)")
    health.add_argument("--debug", action="store_true", help="show the traceback of a target error")
    args = parser.parse_args(argv)
    if args.command == "health":
        return health_command(args)
    if not args.seconds > 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    from .demo import run_demo

    run_demo(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
