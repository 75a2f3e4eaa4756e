"""Every query of docs/grafana/hardy-dashboard.json, run by a real Prometheus server against hardy's exporter.

A process (this one) exports hardy's metrics over HTTP on loopback while its
breakers, retries, timeouts, fallbacks, bulkheads and rate limiters work; a
``prometheus`` server (Debian's package, which ``.ci/run`` installs) scrapes
it every second. Each panel's expression, with Grafana's variables set as the
dashboard's "All" sets them, must then be valid PromQL and return series:
a panel built on a name or label hardy does not export would come back empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
import pytest

import hardy
import hardy.metrics.prometheus

from .redis_server import free_port
from .test_dashboard import dashboard

pytestmark = pytest.mark.prometheus_server

# Grafana's variables, as the dashboard's "All" and a short time range set them. A rate
# window of five scrapes holds two samples of each counter even when a scrape is late.
VARIABLES = {"$name": ".*", "$bulkhead": ".*", "$limiter": ".*", "$__rate_interval": "5s", "$__range": "1m"}
STARTUP = 30.0  # seconds for the server to answer; it is ready in about one here
SCRAPES = 4  # scrapes to wait for before querying


class Down(Exception):
    pass


def query(port: int, expr: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:  # a bad query answers 400 with the error in the body
        return json.loads(error.read())  # type: ignore[no-any-return]


def substituted(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


class Workload:
    """Calls through one of each protected kind, over and over, until stopped (a thread)."""

    def __init__(self, run: int) -> None:
        # Names of this run alone: an earlier run's breakers, still alive, would be added up with these.
        self.stop = threading.Event()
        self.payments = hardy.CircuitBreaker(f"dash-payments-{run}", failure_threshold=2, reset_timeout=0.5)
        self.search = hardy.CircuitBreaker(f"dash-search-{run}")
        self.pool = hardy.Bulkhead(f"dash-pool-{run}", max_concurrent=4)
        self.limiter = hardy.RateLimiter(f"dash-api-{run}", rate=50, max_wait=0.05)
        self.flaky_calls = 0

        @hardy.retry(max_attempts=2, initial_delay=0.0)
        def flaky() -> None:
            self.flaky_calls += 1
            if self.flaky_calls % 3:
                raise ConnectionError("flaky")

        @hardy.fallback(lambda: "cached")
        def lookup() -> str:
            raise ConnectionError("down")

        @hardy.timeout(0.001)
        async def slow() -> None:
            await asyncio.sleep(1)

        self.flaky, self.lookup, self.slow = flaky, lookup, slow
        self.thread = threading.Thread(target=self.run, daemon=True)

    def down(self) -> None:
        raise ConnectionError("payments down")

    def once(self) -> None:
        for call in (lambda: self.payments.call(self.down), self.flaky):
            with contextlib.suppress(ConnectionError, hardy.CircuitOpenError):
                call()
        self.search.call(int)
        self.lookup()
        with contextlib.suppress(hardy.TimeoutError):
            asyncio.run(self.slow())
        with self.pool:
            pass
        try:
            with self.limiter:
                pass
        except hardy.RateLimitExceededError:
            pass

    def run(self) -> None:
        while not self.stop.wait(0.02):
            for _ in range(5):
                self.once()


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:  # .ci/run installs it: a missing server must not pass for a checked dashboard
        pytest.fail("the prometheus server is not installed (Debian: apt-get install prometheus)")
    return found


@pytest.fixture
def exporter() -> Iterator[int]:
    registry = prometheus_client.CollectorRegistry()
    hardy.metrics.prometheus.register(registry)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(prometheus_binary: str, exporter: int, tmp_path: Path) -> Iterator[int]:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: hardy\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n",
        encoding="utf-8",
    )
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                raise Down(process.stderr.read().decode() if process.stderr else "")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise Down(f"prometheus did not answer within {STARTUP} s") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


RUNS = itertools.count()


def test_every_panel_query_returns_series_from_a_real_prometheus(server: int) -> None:
    run = next(RUNS)
    work = Workload(run)
    work.thread.start()
    try:
        deadline = time.monotonic() + STARTUP
        while True:  # until the server holds a few scrapes of hardy's exporter
            answer = query(server, 'count_over_time(up{job="hardy"}[1m])')
            result = answer["data"]["result"]
            if result and int(result[0]["value"][1]) >= SCRAPES:
                break
            assert time.monotonic() < deadline, f"fewer than {SCRAPES} scrapes in {STARTUP} s: {answer}"
            time.sleep(0.25)
        empty: list[str] = []
        answers: dict[str, list[dict[str, Any]]] = {}
        targets = [(panel["title"], target["expr"]) for panel in dashboard()["panels"] for target in panel["targets"]]
        assert len(targets) >= 15
        for title, expr in targets:
            answer = query(server, substituted(expr))
            assert answer["status"] == "success", (title, expr, answer)
            answers[title] = answer["data"]["result"]
            if not answer["data"]["result"]:
                empty.append(title)
        assert not empty, f"panels with no series: {empty}"
        # The state timeline's values, per name: the failing dependency's breaker is open or
        # trying again (2 or 1), the healthy one closed (0).
        states = {series["metric"]["name"]: float(series["value"][1]) for series in answers["Breaker state"]}
        assert states[f"dash-search-{run}"] == 0.0
        assert states[f"dash-payments-{run}"] in (1.0, 2.0)
    finally:
        work.stop.set()
        work.thread.join(timeout=30)
    up = query(server, 'up{job="hardy"}')["data"]["result"]
    assert up
    assert up[0]["value"][1] == "1"
