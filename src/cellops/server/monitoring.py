"""REST routes of the monitoring area.

    GET  monitoring                         monitors with their state, their last windows
                                            (drift share, performance, drift per column;
                                            distributions of the latest) and active alerts
    GET  monitoring/monitors/NAME?limit=N   one monitor's spec and its results per window,
                                            each with its worst columns' distributions
    POST monitoring/alerts/ID/ack           acknowledge an alert   (body: {"comment": ...})
    POST monitoring/alerts/ID/resolve       resolve an alert       (body: {"comment": ...})
"""

from __future__ import annotations

from typing import Any

import cellops

from .base import Handler, web


def _series(name: str, limit: int, distributions: str = "all") -> list[dict[str, Any]]:
    """A monitor's results per window; ``distributions`` "last" keeps the drift checks'
    distributions of the latest window only (the overview the sidebar polls stays small)."""
    from cellops.monitoring import monitor_results

    results = monitor_results(name, limit)
    out = []
    for i, r in enumerate(results):
        checks = r.checks
        if distributions == "last" and i < len(results) - 1:
            checks = [{**c, "details": {k: v for k, v in (c.get("details") or {}).items()
                                        if k != "distributions"}} for c in checks]
        out.append({**r.__dict__, "checks": checks,
                    "window_start": int(r.window_start.timestamp() * 1000),
                    "window_end": int(r.window_end.timestamp() * 1000)})
    return out


def _overview(limit: int) -> dict[str, Any]:
    monitors = []
    for m in cellops.monitors():
        monitors.append({"name": m.name, "model": m.model, "state": m.state,
                         "window": m.spec["window"]["text"],
                         "checks": m.spec["checks"],
                         "results": _series(m.name, limit, distributions="last")})
    return {"monitors": monitors, "alerts": [a.to_dict() for a in cellops.alerts("active")]}


def _monitor(name: str, limit: int) -> dict[str, Any]:
    m = cellops.get_monitor(name)
    return {**m.to_dict(), "state": m.state, "results": _series(name, limit),
            "alerts": [a.to_dict() for a in cellops.alerts(None, name)]}


class MonitoringHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, 1000)
        self.workspace()
        self.reply(await self.call(_overview, limit))


class MonitorHandler(Handler):
    @web.authenticated
    async def get(self, name: str) -> None:
        limit = self.int_arg("limit", 200, 1, 5000)
        self.workspace()
        self.reply(await self.call(_monitor, name, limit))


class AlertHandler(Handler):
    @web.authenticated
    async def post(self, alert_id: str, action: str) -> None:
        comment = self.comment()
        self.workspace()
        move = cellops.ack_alert if action == "ack" else cellops.resolve_alert
        result = await self.call(move, int(alert_id), comment)
        self.reply(result.to_dict())


ROUTES = [("monitoring", MonitoringHandler),
          (r"monitoring/monitors/([A-Za-z0-9_][A-Za-z0-9_.-]*)", MonitorHandler),
          (r"monitoring/alerts/([0-9]{1,30})/(ack|resolve)", AlertHandler)]
