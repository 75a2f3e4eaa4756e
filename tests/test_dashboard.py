"""docs/grafana/hardy-dashboard.json: valid, laid out without overlaps, built only on names hardy exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import prometheus_client

import hardy
import hardy.metrics.prometheus

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "hardy-dashboard.json"


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def exported_names() -> set[str]:
    registry = prometheus_client.CollectorRegistry()
    hardy.metrics.prometheus.register(registry)
    breaker = hardy.CircuitBreaker("dashboard")
    hardy.retry(max_attempts=1)(lambda: None)
    text = prometheus_client.generate_latest(registry).decode()
    assert breaker.is_closed
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("hardy_")} | {
        line.split()[2] for line in text.splitlines() if line.startswith("# TYPE hardy_")
    }


def test_every_query_uses_names_hardy_exports() -> None:
    names = exported_names()
    used = set()
    for panel in dashboard()["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"\bhardy_[a-z_]+", target["expr"]))
    assert used
    assert used <= names, used - names
    # Every exported metric has a panel.
    assert {name.removesuffix("_total") for name in names} <= {name.removesuffix("_total") for name in used}


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_the_picture_is_there_and_says_what_it_is() -> None:
    assert (ROOT / "docs" / "grafana" / "dashboard.png").stat().st_size > 10_000
    page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert "grafana/dashboard.png" in page
    assert "not a Grafana screenshot" in page
    assert "scripts/render_dashboard.py" in page
