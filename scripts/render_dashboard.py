"""Draw docs/grafana/hardy-dashboard.json from a real Prometheus server's answers to its queries.

No Grafana is needed (nor available offline): this process runs a small
service through hardy's breakers, retries, timeout, fallback, bulkhead and
rate limiter for a few minutes, with the ``payments`` dependency down for
part of it, and exports hardy's metrics over HTTP on loopback; a
``prometheus`` server (Debian: ``apt-get install prometheus``) scrapes it
every second. Then every panel's expression is sent to that server as it
is (Grafana's variables set as the dashboard's "All" sets them) and its
answer is drawn with matplotlib at the panel's place. The picture says so
in its title: real data through the real queries, drawn in Grafana's
layout, not a Grafana screenshot.

Usage::

    python scripts/render_dashboard.py [docs/grafana/dashboard.png] [--seconds 180]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import prometheus_client

import hardy
import hardy.metrics.prometheus

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "hardy-dashboard.json"
OUT = ROOT / "docs" / "grafana" / "dashboard.png"
BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#d8d9da", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff7383", "#b877d9", "#fade2a"]
STATE_COLOURS = {0: "#73bf69", 1: "#ff9830", 2: "#f2495c", 3: "#f2495c"}
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval for a 1 s scrape


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """A small service: its calls go through hardy; ``payments`` is down from 30 % to 55 % of the run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.rng = random.Random(20)
        self.breakers = {
            name: hardy.CircuitBreaker(name, failure_threshold=5, reset_timeout=5.0)
            for name in ("payments", "search", "inventory")
        }
        self.reports = hardy.Bulkhead("reports", max_concurrent=4, max_wait=0.01)
        self.geocoder = hardy.RateLimiter("geocoder", rate=120, max_wait=0.005)

        def fetch_user() -> str:
            if self.outage() and self.rng.random() < 0.7:
                raise ConnectionError("users down")
            return "user"

        async def render() -> None:
            await asyncio.sleep(0.05 if self.outage() and self.rng.random() < 0.5 else 0.0)

        def price() -> float:
            raise ConnectionError("prices down")

        for function in (fetch_user, render, price):  # the metrics' names: app.fetch_user, ...
            function.__module__ = "app"
            function.__qualname__ = function.__name__
        self.fetch_user = hardy.retry(max_attempts=3, initial_delay=0.0)(fetch_user)
        self.render: Callable[[], Any] = hardy.timeout(0.02)(render)
        self.price = hardy.fallback(lambda: 0.0)(price)

    def outage(self) -> bool:
        share = (time.monotonic() - self.started) / self.seconds
        return 0.30 <= share < 0.55

    def call(self, name: str) -> None:
        def dependency() -> None:
            failing = self.outage() if name == "payments" else self.rng.random() < 0.02
            if failing:
                raise ConnectionError(f"{name} down")

        with suppress(ConnectionError, hardy.CircuitOpenError):
            self.breakers[name].call(dependency)

    def report(self) -> None:
        try:
            with self.reports:
                time.sleep(0.02 if self.outage() else 0.005)
        except hardy.BulkheadFullError:
            pass

    def geocode(self) -> None:
        try:
            with self.geocoder:
                pass
        except hardy.RateLimitExceededError:
            pass

    def work(self) -> None:
        while not self.stop.wait(0.01):
            for name in ("payments", "search", "search", "inventory"):
                self.call(name)
            with suppress(ConnectionError):
                self.fetch_user()
            with suppress(hardy.TimeoutError):
                asyncio.run(self.render())
            if self.rng.random() < 0.3:
                self.price()
            if self.outage() or self.rng.random() < 0.6:  # retries during the outage push it to its rate
                for _ in range(3 if self.outage() else 1):
                    self.geocode()

    def reporters(self) -> None:
        while not self.stop.wait(0.01):
            self.report()

    @contextmanager
    def running(self) -> Iterator[None]:
        # Six reporters share four slots: they wait, and some are turned away, while reports are slow.
        threads = [threading.Thread(target=target, daemon=True) for target in (self.work, *[self.reporters] * 6)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=30)


@contextmanager
def prometheus_server(target: int, data: Path) -> Iterator[int]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("the prometheus server is not installed (Debian: apt-get install prometheus)")
    config = data / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: hardy\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n",
        encoding="utf-8",
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def ask(port: int, path: str, **params: Any) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]  # type: ignore[no-any-return]


def expression(expr: str, seconds: float) -> str:
    for variable, value in {"$name": ".*", "$bulkhead": ".*", "$limiter": ".*"}.items():
        expr = expr.replace(variable, value)
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", f"{int(seconds)}s")


def legend(fmt: str, metric: dict[str, str]) -> str:
    for key, value in metric.items():
        fmt = fmt.replace("{{" + key + "}}", value)
    return fmt


def style(ax: Any, title: str) -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, color=TEXT, fontsize=9, loc="left")
    for spine in ax.spines.values():
        spine.set_color(GRID)
    ax.tick_params(colors=TEXT, labelsize=7)


def draw(panel: dict[str, Any], ax: Any, port: int, start: float, end: float) -> None:
    style(ax, panel["title"])
    kind = panel["type"]
    targets = panel["targets"]
    if kind in ("stat", "bargauge"):
        values: dict[str, float] = {}
        for target in targets:
            for series in ask(port, "query", query=expression(target["expr"], end - start), time=end):
                label = legend(target.get("legendFormat", ""), series["metric"]) or panel["title"]
                values[label] = float(series["value"][1])
        if kind == "stat":
            value = sum(values.values())
            ax.text(
                0.5,
                0.45,
                f"{value:g}",
                color="#f2495c" if value else "#73bf69",
                fontsize=30,
                ha="center",
                va="center",
                weight="bold",
            )
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            names = sorted(values)
            ax.barh(names, [values[n] for n in names], color=["#f2495c" if values[n] else "#73bf69" for n in names])
        return
    step = max(1, int((end - start) / 300))
    lines: list[tuple[str, list[float], list[float]]] = []
    for target in targets:
        for series in ask(
            port, "query_range", query=expression(target["expr"], end - start), start=start, end=end, step=step
        ):
            label = legend(target.get("legendFormat", ""), series["metric"])
            points = [(float(t) - start, float(v)) for t, v in series["values"]]
            lines.append((label, [t for t, _ in points], [v for _, v in points]))
    if kind == "state-timeline":
        lines.sort()
        for row, (_, times, states) in enumerate(lines):
            for k, (t, state) in enumerate(zip(times, states, strict=True)):
                width = (times[k + 1] if k + 1 < len(times) else end - start) - t
                ax.barh(row, width, left=t, color=STATE_COLOURS.get(int(state), GRID), height=0.7)
        ax.set_yticks(range(len(lines)), [label for label, _, _ in lines])
        ax.set_xlim(0, end - start)
        return
    for k, (label, times, values_over_time) in enumerate(lines):
        ax.plot(times, values_over_time, color=COLOURS[k % len(COLOURS)], linewidth=1, label=label)
    ax.set_xlim(0, end - start)
    ax.grid(color=GRID, linewidth=0.5)
    ax.legend(fontsize=6, facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, loc="upper left")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=OUT)
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the service runs (default 180)")
    args = parser.parse_args(argv)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    registry = prometheus_client.CollectorRegistry()
    hardy.metrics.prometheus.register(registry)
    exporter = free_port()
    server, _ = prometheus_client.start_http_server(exporter, addr="127.0.0.1", registry=registry)
    service = Service(args.seconds)
    with tempfile.TemporaryDirectory() as data, prometheus_server(exporter, Path(data)) as port:
        start = time.time()
        with service.running():
            time.sleep(args.seconds)
        time.sleep(2)  # the last scrapes
        end = time.time()
        rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
        fig = plt.figure(figsize=(16, rows * 0.38 + 1.2), facecolor=BG)
        fig.suptitle(
            f"{dashboard['title']}\nA real Prometheus server's answers to the dashboard's queries over "
            f"{args.seconds:.0f} s of a service\n('payments' down from 30 % to 55 % of the run; seconds on the "
            "x axes), drawn with matplotlib in the dashboard's layout: not a Grafana screenshot",
            color=TEXT,
            fontsize=10,
        )
        top = 0.93
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            left = grid["x"] / 24 + 0.005
            width = grid["w"] / 24 - 0.012
            height = grid["h"] / rows * top - 0.035
            bottom = top - (grid["y"] + grid["h"]) / rows * top + 0.01
            draw(panel, fig.add_axes((left, bottom, width, height)), port, start, end)
        fig.savefig(args.out, dpi=80, facecolor=BG)
    server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
