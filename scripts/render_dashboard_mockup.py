"""Draw a mock-up of docs/grafana/hardy-dashboard.json with matplotlib (no Grafana needed).

Every panel of the dashboard is drawn at its grid position with its title,
from *simulated* data shaped like what its query returns (a breaker that
opens, retries that climb with it...). The picture says so in its title: it
shows the layout and what each panel is for, not a real system.

Usage::

    python scripts/render_dashboard_mockup.py [docs/grafana/dashboard-mockup.png]
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "hardy-dashboard.json"
OUT = ROOT / "docs" / "grafana" / "dashboard-mockup.png"

BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#d8d9da", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff7383", "#b877d9", "#fade2a"]
BREAKERS = ["payments", "search", "inventory"]
MINUTES = 360


def outage(t: int) -> bool:
    """The simulated story: payments' dependency is down from minute 150 to 190."""
    return 150 <= t < 190


def series(kind: str, rng: random.Random) -> dict[str, list[float]]:
    t = range(MINUTES)
    if kind == "outcomes":
        return {
            "success": [120 + 20 * math.sin(i / 30) - (60 if outage(i) else 0) + rng.uniform(-5, 5) for i in t],
            "failure": [(2 if not outage(i) else 8) + rng.uniform(0, 1) for i in t],
            "rejected": [(50 if outage(i) else 0) + (rng.uniform(0, 3) if outage(i) else 0) for i in t],
            "ignored": [0.5 + rng.uniform(0, 0.3) for i in t],
        }
    if kind == "ratio":
        return {
            name: [(0.6 if outage(i) and name == "payments" else 0.02 * (k + 1)) + rng.uniform(0, 0.01) for i in t]
            for k, name in enumerate(BREAKERS)
        }
    if kind == "rejections":
        return {name: [(50 if outage(i) and name == "payments" else 0) for i in t] for name in BREAKERS}
    if kind == "retries":
        return {
            "retries app.fetch_user": [(6 if outage(i) else 0.5) + rng.uniform(0, 0.5) for i in t],
            "give-ups app.fetch_user": [(2 if outage(i) else 0.02) for i in t],
        }
    if kind == "timeouts":
        return {"app.render": [(3 if 160 <= i < 175 else 0.1) + rng.uniform(0, 0.1) for i in t]}
    if kind == "bulkhead_calls":  # the report pool fills while payments is slow to fail
        return {
            "reports admitted": [30 + 5 * math.sin(i / 25) + rng.uniform(-2, 2) for i in t],
            "reports rejected": [(9 if outage(i) else 0) + (rng.uniform(0, 2) if outage(i) else 0) for i in t],
            "reports waited": [(12 if outage(i) else 1) + rng.uniform(0, 1) for i in t],
        }
    if kind == "occupancy":
        return {"reports": [min(1.0, (1.0 if outage(i) else 0.35) + rng.uniform(-0.05, 0.05)) for i in t]}
    if kind == "waiting":
        return {"reports": [(6 if outage(i) else 0) + (rng.uniform(0, 2) if outage(i) else 0) for i in t]}
    if kind == "limiter_calls":  # retries during the outage push the geocoder's limiter to its rate
        return {
            "geocoder permitted": [(5 if outage(i) else 3) + rng.uniform(-0.3, 0.3) for i in t],
            "geocoder rejected": [(2 if outage(i) else 0) + (rng.uniform(0, 0.5) if outage(i) else 0) for i in t],
            "geocoder waited": [(3 if outage(i) else 0.2) + rng.uniform(0, 0.2) for i in t],
        }
    if kind == "permits":
        return {"geocoder": [(0.0 if outage(i) else 0.6) + rng.uniform(0, 0.1) for i in t]}
    if kind == "rate_used":
        return {"geocoder": [(1.0 if outage(i) else 0.6) + rng.uniform(-0.03, 0.0) for i in t]}
    return {"app.fetch_user": [(4 if outage(i) else 0.2) + rng.uniform(0, 0.2) for i in t]}


SERIES_OF = {
    4: "outcomes",
    5: "ratio",
    6: "rejections",
    8: "retries",
    9: "timeouts",
    10: "fallbacks",
    11: "bulkhead_calls",
    12: "occupancy",
    13: "waiting",
    14: "limiter_calls",
    15: "permits",
    16: "rate_used",
}


def style(ax: Any, title: str) -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, color=TEXT, fontsize=9, loc="left")
    for spine in ax.spines.values():
        spine.set_color(GRID)
    ax.tick_params(colors=TEXT, labelsize=7)


def draw(panel: dict[str, Any], ax: Any, rng: random.Random) -> None:
    style(ax, panel["title"])
    kind = panel["type"]
    if kind == "stat":
        value = 0  # the story's outage is over at the right edge
        colour = "#73bf69"
        ax.text(0.5, 0.45, str(value), color=colour, fontsize=30, ha="center", va="center", weight="bold")
        ax.set_xticks([])
        ax.set_yticks([])
    elif kind == "state-timeline":
        colours = {0: "#73bf69", 1: "#ff9830", 2: "#f2495c"}
        for row, name in enumerate(BREAKERS):
            payments = name == "payments"
            states = [2 if outage(i) and payments else 1 if 190 <= i < 195 and payments else 0 for i in range(MINUTES)]
            start = 0
            for i in range(1, MINUTES + 1):
                if i == MINUTES or states[i] != states[start]:
                    ax.barh(row, i - start, left=start, color=colours[states[start]], height=0.7)
                    start = i
        ax.set_yticks(range(len(BREAKERS)), BREAKERS)
        ax.set_xticks([])
    elif kind == "bargauge":
        values: list[float] = [3, 0, 0]  # payments opened three times (each trial failed until the end)
        ax.barh(BREAKERS, values, color=["#f2495c" if v else "#73bf69" for v in values])
        ax.set_xlim(0, 4)
    else:
        for k, (label, values) in enumerate(series(SERIES_OF[panel["id"]], rng).items()):
            ax.plot(range(MINUTES), values, color=COLOURS[k % len(COLOURS)], linewidth=1, label=label)
        ax.grid(color=GRID, linewidth=0.5)
        ax.set_xticks([])
        ax.legend(fontsize=6, facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, loc="upper right")


def main(out: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rng = random.Random(20)
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    fig = plt.figure(figsize=(16, rows * 0.38 + 1.2), facecolor=BG)
    fig.suptitle(
        f"{dashboard['title']}  (MOCK-UP: drawn with matplotlib from simulated data, not a Grafana screenshot)",
        color=TEXT,
        fontsize=11,
    )
    top = 0.93
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        left = grid["x"] / 24 + 0.005
        width = grid["w"] / 24 - 0.012
        height = grid["h"] / rows * top - 0.035
        bottom = top - (grid["y"] + grid["h"]) / rows * top + 0.01
        draw(panel, fig.add_axes((left, bottom, width, height)), rng)
    fig.savefig(out, dpi=80, facecolor=BG)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
