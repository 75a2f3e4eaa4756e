"""Run every benchmark in one interleaved run and write a report a person can read.

Usage::

    python -m benchmarks.report OUT_DIR [--rounds 21] [--sample-ms 5] [--only TEXT]

Writes ``OUT_DIR/report.md`` (one table per scenario: ns per call, ratio to
the bare call, ratio to the fastest peer; then memory and threads; then the
performance targets with PASS/FAIL), ``OUT_DIR/report.png`` (a bar chart per
scenario) and ``OUT_DIR/results.json``. Exits 1 when a target fails.

Interleaving: every case is calibrated to take about ``--sample-ms`` per
sample, then each round runs every case once, in a new random order, so
quiet and busy phases of a shared machine fall on all cases alike. A case's
figure is the median of its samples (its fastest sample beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hardy

from . import observability, peers, targets, timeout_latency
from ._harness import CALLS, load_core
from .scenarios import SCENARIOS, Case, Scenario
from .test_resources_bench import (
    REJECTIONS,
    THREADED,
    bytes_per_breaker,
    eight_threads,
    retained_after_rejections,
    windowed_breakers,
)

Key = tuple[str, str]


def _calibrate(case: Case, loop: asyncio.AbstractEventLoop, sample_s: float) -> tuple[Callable[[], None], int]:
    calls = 10
    while True:
        runner = case.factory(calls, loop)
        started = time.perf_counter()
        runner()
        elapsed = time.perf_counter() - started
        if elapsed >= sample_s / 4 or calls >= 100_000:
            break
        calls *= 10
    wanted = max(10, int(calls * sample_s / max(elapsed, 1e-9)) // 10 * 10)
    return case.factory(wanted, loop), wanted


def time_scenarios(
    scenarios: list[Scenario], rounds: int, sample_s: float, log: Callable[[str], None]
) -> dict[Key, list[float]]:
    """ns per call of every case, one sample per round, rounds interleaved."""
    loop = asyncio.new_event_loop()
    try:
        runners: dict[Key, tuple[Callable[[], None], int]] = {}
        for scenario in scenarios:
            for case in scenario.cases:
                runners[(scenario.group, case.name)] = _calibrate(case, loop, sample_s)
        log(f"calibrated {len(runners)} cases; {rounds} interleaved rounds")
        samples: dict[Key, list[float]] = {key: [] for key in runners}
        order = list(runners)
        for index in range(rounds):
            random.shuffle(order)
            for key in order:
                runner, calls = runners[key]
                started = time.perf_counter()
                runner()
                samples[key].append((time.perf_counter() - started) / calls * 1e9)
            if (index + 1) % 5 == 0:
                log(f"round {index + 1}/{rounds}")
        return samples
    finally:
        loop.close()


def time_threads(rounds: int) -> dict[str, list[float]]:
    """Wall seconds for 8 threads x 25 calls of a 2 ms function, per case, interleaved."""
    cases = {name: build() for name, build in THREADED.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            started = time.perf_counter()
            eight_threads(cases[name])
            samples[name].append(time.perf_counter() - started)
    return samples


def measure_memory() -> dict[str, float]:
    result: dict[str, float] = {}
    for name in ("c", "py"):
        gc.collect()
        result[f"bytes per breaker, hardy-{name}"] = bytes_per_breaker(load_core(name).CircuitBreaker)
        breaker = load_core(name).CircuitBreaker("flat", failure_threshold=1, reset_timeout=3600)
        breaker.record_failure(ValueError("trip"))
        result[f"bytes retained per rejection, hardy-{name}"] = retained_after_rejections(
            breaker(lambda x: x), REJECTIONS
        )
    for name in ("c", "py"):
        gc.collect()
        result[f"bytes per breaker with CountWindow(100), hardy-{name}"] = bytes_per_breaker(
            windowed_breakers(load_core(name))
        )
    return result


def _targets_view(
    timed: dict[Key, list[float]], threads: dict[str, list[float]], memory: dict[str, float]
) -> dict[Key, dict[str, Any]]:
    """The measurements in the shape ``targets.check`` reads (pytest-benchmark's JSON)."""
    view: dict[Key, dict[str, Any]] = {}
    for key, values in timed.items():
        view[key] = {
            "stats": {"min": min(values) * CALLS / 1e9, "median": statistics.median(values) * CALLS / 1e9},
            "extra_info": {},
        }
    for name, values in threads.items():
        view[("breaker-8-threads-2ms", name)] = {
            "stats": {"min": min(values), "median": statistics.median(values)},
            "extra_info": {},
        }
    for name in ("c", "py"):
        view[("breaker-memory", name)] = {
            "stats": {"min": 0.0, "median": 0.0},
            "extra_info": {"bytes_per_breaker": memory[f"bytes per breaker, hardy-{name}"]},
        }
        view[("breaker-memory-window", name)] = {
            "stats": {"min": 0.0, "median": 0.0},
            "extra_info": {"bytes_per_breaker": memory[f"bytes per breaker with CountWindow(100), hardy-{name}"]},
        }
        view[("breaker-open-memory-flat", name)] = {
            "stats": {"min": 0.0, "median": 0.0},
            "extra_info": {"retained_bytes_per_rejection": memory[f"bytes retained per rejection, hardy-{name}"]},
        }
    return view


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; {platform.python_implementation()} {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


def _format_ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:,.2f} µs"
    return f"{value:,.0f} ns"


def render_markdown(
    scenarios: list[Scenario],
    timed: dict[Key, list[float]],
    threads: dict[str, list[float]],
    memory: dict[str, float],
    verdicts: list[tuple[str, str, float, bool]],
    command: str,
) -> str:
    lines = [
        "# hardy benchmark report",
        "",
        f"- when: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {_machine()}",
        f"- hardy {hardy.__version__}, core `{hardy.IMPLEMENTATION}`",
        f"- command: `{command}`",
        "- figures: median ns per call over interleaved rounds (fastest sample in brackets); "
        "× bare is the ratio to the scenario's floor, × best peer the ratio to the fastest peer; "
        "targets are judged on the medians (the fastest samples beside them)",
        "",
        "Peers:",
        "",
    ]
    lines += [f"- {name}: {state}" for name, state in peers.availability().items()]
    for scenario in scenarios:
        cases = list(scenario.cases)
        medians = {case.name: statistics.median(timed[(scenario.group, case.name)]) for case in cases}
        floor = medians.get(scenario.floor)
        peer_medians = [medians[case.name] for case in cases if case.kind == "peer"]
        best_peer = min(peer_medians) if peer_medians else None
        lines += [
            "",
            f"## {scenario.title}",
            "",
            f"`{scenario.group}`",
            "",
            "| case | kind | per call | × bare | × best peer |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for case in sorted(cases, key=lambda c: medians[c.name]):
            values = timed[(scenario.group, case.name)]
            median = medians[case.name]
            ratio_floor = f"{median / floor:.2f}" if floor else ""
            ratio_peer = f"{median / best_peer:.2f}" if best_peer else ""
            name = f"**{case.name}**" if case.kind == "hardy" else case.name
            lines.append(
                f"| {name} | {case.kind} | {_format_ns(median)} ({_format_ns(min(values))}) "
                f"| {ratio_floor} | {ratio_peer} |"
            )
    lines += [
        "",
        "## Threads: 8 threads × 25 calls of a 2 ms function through one breaker",
        "",
        "| case | wall time | × bare |",
        "| --- | ---: | ---: |",
    ]
    bare = statistics.median(threads["bare"])
    for name, values in sorted(threads.items(), key=lambda item: statistics.median(item[1])):
        median = statistics.median(values)
        lines.append(f"| {name} | {median * 1e3:.1f} ms | {median / bare:.2f} |")
    lines += ["", "## Memory", "", "| measure | value |", "| --- | ---: |"]
    lines += [f"| {name} | {value:.2f} B |" for name, value in memory.items()]
    lines += ["", "## Targets", "", "| target | measured | limit | verdict |", "| --- | ---: | ---: | --- |"]
    for description, measured, limit, passed in verdicts:
        lines.append(f"| {description} | {measured} | {limit:g} | {'PASS' if passed else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def render_chart(scenarios: list[Scenario], timed: dict[Key, list[float]], path: Path) -> str | None:
    """A horizontal bar chart per scenario; returns why it was skipped, if it was."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); install the bench extra for the chart"
    if not scenarios:  # --only matched no scenario (the observability targets alone, say)
        return "no scenario was timed"
    columns = 3
    rows = (len(scenarios) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(18, 3.2 * rows))
    colours = {"hardy": "#d1495b", "floor": "#8d99ae", "peer": "#2b59c3"}
    for axis, scenario in zip(axes.flat, scenarios, strict=False):
        cases = sorted(scenario.cases, key=lambda c: statistics.median(timed[(scenario.group, c.name)]))
        values = [statistics.median(timed[(scenario.group, c.name)]) for c in cases]
        axis.barh([c.name for c in cases], values, color=[colours[c.kind] for c in cases])
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.invert_yaxis()
        axis.set_title(scenario.title, fontsize=9)
        axis.set_xlabel("ns per call (log scale)", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(scenarios) :]:
        axis.set_visible(False)
    figure.suptitle("hardy (red) vs floors (grey) and peers (blue): median time per call", fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return None


def evaluate(view: dict[Key, dict[str, Any]], groups: set[str] | None = None) -> list[tuple[str, str, float, bool]]:
    """Every target's verdict; with ``groups``, only the targets of those groups (``--only``)."""
    verdicts = []
    for target in targets.TARGETS:
        if groups is not None and target.group not in groups:
            continue
        measured, passed = targets.measure(target, view, "median")
        verdicts.append((target.description, measured, target.limit, passed))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write report.md, report.png and results.json to")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default 21)")
    parser.add_argument("--sample-ms", type=float, default=5.0, help="target length of one sample (default 5 ms)")
    parser.add_argument("--only", default="", help="run only the scenarios whose group contains this text")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error(f"--rounds must be at least 3, got {args.rounds}")
    if args.sample_ms <= 0:
        parser.error(f"--sample-ms must be > 0, got {args.sample_ms}")
    args.out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    scenarios = [scenario for scenario in SCENARIOS if args.only in scenario.group]
    timed = time_scenarios(scenarios, args.rounds, args.sample_ms / 1000, log)
    log("threads")
    threads = time_threads(max(3, args.rounds // 4))
    log("memory")
    memory = measure_memory()
    log("timeout lateness")
    lateness = timeout_latency.measure()
    log("observability")
    observed = observability.overhead(max(5, args.rounds // 2))
    scraped = observability.scrape()
    view = _targets_view(timed, threads, memory)
    for case, figures in observed.items():
        view[("observed-success", case)] = {"stats": {"min": 0.0, "median": 0.0}, "extra_info": figures}
    view[("prometheus-scrape-10000", "c")] = {"stats": {"min": 0.0, "median": 0.0}, "extra_info": scraped}
    measured_groups = {scenario.group for scenario in scenarios} | {
        "breaker-8-threads-2ms",
        "breaker-memory",
        "breaker-memory-window",
        "breaker-open-memory-flat",
        "observed-success",
        "prometheus-scrape-10000",
    }
    verdicts = evaluate(view, measured_groups if args.only else None)
    command = "python -m benchmarks.report " + " ".join(sys.argv[1:] if argv is None else argv)
    markdown = render_markdown(scenarios, timed, threads, memory, verdicts, command)
    markdown += "\n".join(timeout_latency.render(lateness)) + "\n"
    markdown += "\n".join(observability.render(observed, scraped)) + "\n"
    skipped = render_chart(scenarios, timed, args.out / "report.png")
    if skipped:
        markdown += f"\n(No chart: {skipped}.)\n"
    (args.out / "report.md").write_text(markdown)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "timed_ns_per_call": {f"{group}[{case}]": values for (group, case), values in timed.items()},
                "threads_seconds": threads,
                "memory_bytes": memory,
                "timeout_lateness": lateness,
                "observability": {"success": observed, "scrape": scraped},
                "targets": [{"target": d, "measured": m, "limit": lim, "passed": p} for d, m, lim, p in verdicts],
            },
            indent=1,
        )
    )
    print(markdown)
    failed = [description for description, _, _, passed in verdicts if not passed]
    if failed:
        print(f"{len(failed)} target(s) failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
