"""How late sync timeouts land, and what looking for a safe point costs at fire time.

Lateness: a busy loop under ``hardy.timeout(LIMIT)``; the time from its
deadline to the moment the caller holds the ``TimeoutError``, with 0, 2 and 8
other threads spinning in Python code (they compete with the timer thread
for the GIL). Fire-time cost: one verdict of the timer about a thread that
runs user code (the compiled core's in C, the twin's through
``sys._current_frames`` and ``sys._current_exceptions``).

Run on its own::

    python -m benchmarks.timeout_latency
"""

from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from typing import Any

from hardy import _deadlines, _safe_points

from ._harness import load_core

LIMIT = 0.01
CALLS = 40
BUSY_THREADS = (0, 2, 8)
VERDICTS = 2_000


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def lateness(core: str, busy_threads: int, calls: int = CALLS, limit: float = LIMIT) -> list[float]:
    """Seconds from each deadline to the caught TimeoutError, with ``busy_threads`` spinning meanwhile."""
    timed = load_core(core).timed(_busy, limit, "busy")
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            _busy(0.001)

    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(busy_threads)]
    for thread in spinners:
        thread.start()
    late: list[float] = []
    try:
        for _ in range(calls):
            started = time.monotonic()
            try:
                timed(10.0)
            except Exception:  # hardy.TimeoutError; the wrapper logs nothing here
                late.append(time.monotonic() - started - limit)
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    return late


def verdict_cost(core: str, checks: int = VERDICTS) -> float:
    """Nanoseconds per verdict of the timer about a thread busy in user code."""
    ready = threading.Event()
    stop = threading.Event()

    def user_code() -> None:
        ready.set()
        while not stop.is_set():
            pass

    thread = threading.Thread(target=user_code, daemon=True)
    thread.start()
    ready.wait()
    ident = thread.ident
    assert ident is not None
    if core == "c":
        load_core("c")
        (registry,) = [r for r in _deadlines._registries if hasattr(r, "verdict")]

        def check() -> Any:
            return registry.verdict(ident)
    else:

        def check() -> Any:
            return _safe_points.verdict(ident, _safe_points.snapshot(), _deadlines.Expired)

    try:
        started = time.perf_counter()
        for _ in range(checks):
            check()
        return (time.perf_counter() - started) / checks * 1e9
    finally:
        stop.set()
        thread.join()


def measure() -> dict[str, Any]:
    """Lateness percentiles per core and busy-thread count, and the verdict cost per core."""
    logging.getLogger("hardy").setLevel(logging.ERROR)  # each timeout logs a warning
    result: dict[str, Any] = {"lateness_ms": {}, "verdict_ns": {}}
    for core in ("c", "py"):
        for busy_threads in BUSY_THREADS:
            late = sorted(lateness(core, busy_threads))
            p99 = late[min(len(late) - 1, round(0.99 * (len(late) - 1)))]
            result["lateness_ms"][f"hardy-{core}, {busy_threads} busy threads"] = {
                "median": statistics.median(late) * 1e3,
                "p99": p99 * 1e3,
                "calls": len(late),
            }
        result["verdict_ns"][f"hardy-{core}"] = verdict_cost(core)
    return result


def render(result: dict[str, Any]) -> list[str]:
    """Markdown lines for the report."""
    lines = [
        "",
        f"## Sync timeouts: how late interrupts land ({LIMIT * 1e3:g} ms deadline, busy loop)",
        "",
        "Time from the deadline to the caught `TimeoutError`, while other threads spin in Python code.",
        "",
        "| case | median | p99 | calls |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in result["lateness_ms"].items():
        lines.append(f"| {name} | {row['median']:.2f} ms | {row['p99']:.2f} ms | {row['calls']} |")
    lines += [
        "",
        "Cost of one look at a thread when a deadline fires (innermost frame, trace state, handled exception):",
        "",
        "| core | per look |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {value:,.0f} ns |" for name, value in result["verdict_ns"].items()]
    return lines


if __name__ == "__main__":
    print("\n".join(render(measure())))
    sys.exit(0)
