"""A monitor as people read it: its state, drift share, performance and volume over the
windows (one interactive chart with an SVG copy) and its open alerts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import charts
from ..workspaces import workspace

if TYPE_CHECKING:
    from .monitors import Monitor

__all__ = ["history_html", "history_report"]


def history_html(monitor: Monitor, limit: int = 200) -> str:
    """:func:`history_report` as one static HTML fragment (charts as SVG)."""
    return history_report(monitor, limit).html()


def history_report(monitor: Monitor, limit: int = 200) -> charts.Report:
    """The monitor's state, its drift share, performance and volume over windows (one
    interactive chart, an SVG copy for viewers without plotly) and its open alerts."""
    import html

    store = workspace().store.monitors
    rows = store.results(monitor.name, limit)
    by_window = monitor.spec["window"]["kind"] == "rows"  # x = window number, not time
    times = list(range(1, len(rows) + 1)) if by_window else [r["window_end"] for r in rows]
    x_kind = "window" if by_window else "time"

    def over(values: list[Any]) -> list[tuple[int, Any]]:
        return list(zip(times, values))

    style = "color:var(--jp-ui-font-color1,#222)"
    head = (f"<div class='cellops-monitor' style='{style}'>"
            f"<b>Monitor {html.escape(monitor.name)}</b> on <code>{html.escape(monitor.model)}</code>"
            f" · window {html.escape(monitor.spec['window']['text'])} · state "
            f"<b>{monitor.state}</b> · {len(rows)} window(s)")
    if not rows:
        head += "<div>No window evaluated yet: run <code>cellops monitor run</code>.</div>"
    panels: dict[str, dict[str, list]] = {}
    bounds: dict[str, float] = {}
    y_labels: dict[str, str] = {}
    drift_check = next((c for c in monitor.spec["checks"] if c["type"] == "drift"
                        and "columns" not in c), None)
    if drift_check and any(r["drift_share"] is not None for r in rows):
        panels["drift share"] = {"drift share": over([r["drift_share"] for r in rows])}
        bounds["drift share"], y_labels["drift share"] = drift_check["share"], "share"
    for check in monitor.spec["checks"]:
        if check["type"] not in ("performance", "estimated_performance"):
            continue
        values, lower, upper, realised = [], [], [], []
        for r in rows:
            m = json.loads(r["metrics"] or "{}").get(check["name"]) or {}
            values.append(m.get("value"))
            lower.append(m.get("lower"))
            upper.append(m.get("upper"))
            realised.append(m.get("realized"))
        series = {check["metric"]: over(values)}
        if check["type"] == "estimated_performance":
            series = {f"estimated {check['metric']}": over(values), "lower": over(lower),
                      "upper": over(upper)}
            if any(v is not None for v in realised):
                series["realised"] = over(realised)
        panels[check["name"]] = series
        y_labels[check["name"]] = check["metric"]
        bound = check.get("min", check.get("max"))
        if bound is not None:
            bounds[check["name"]] = bound
    if rows:
        panels["predicted rows"] = {"rows": over([r["rows"] for r in rows])}
        y_labels["predicted rows"] = "rows"
    chart = charts.line_chart(panels, x_kind=x_kind, bounds=bounds, y_labels=y_labels,
                              from_zero=("drift share", "predicted rows"),
                              title=f"monitor {monitor.name}") if rows else ""
    active = store.alerts(state="active", monitor=monitor.name)
    alerts = ""
    if active:
        alerts = ("<div><b>Alerts</b><ul>" + "".join(
            f"<li>#{a['id']} {a['state']} · {html.escape(a['check_name'])}: "
            f"{html.escape(a['message'] or '')} ({a['windows']} window(s))</li>" for a in active)
            + "</ul></div>")
    # The static copy is one <div>; shown live, the chart is an output of its own.
    return charts.Report([head + "</div>", chart, f"<div style='{style}'>{alerts}</div>" if alerts else ""])
