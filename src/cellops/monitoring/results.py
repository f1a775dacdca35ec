"""What monitors found: one :class:`MonitorResult` per evaluated window, read back as
objects (:func:`monitor_results`) or as a DataFrame (:func:`monitor_history`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ..errors import NotFoundError
from ..workspaces import workspace

__all__ = ["MonitorResult", "check_monitor", "monitor_history", "monitor_results"]


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, timezone.utc) if ms is not None else None


@dataclass
class MonitorResult:
    """One evaluated window: ``status`` ok / failing / empty / error, each check's outcome,
    and the alerts it opened."""

    monitor: str
    id: int
    window_start: datetime
    window_end: datetime
    rows: int
    status: str
    checks: list[dict[str, Any]]
    drift_share: float | None
    metrics: dict[str, Any]
    error: str | None = None
    opened_alerts: tuple[int, ...] = ()

    @classmethod
    def from_row(cls, r: Mapping[str, Any], opened: Iterable[int] = ()) -> MonitorResult:
        return cls(r["monitor"], r["id"], _dt(r["window_start"]), _dt(r["window_end"]),  # type: ignore[arg-type]
                   r["rows"], r["status"], json.loads(r["checks"] or "[]"), r["drift_share"],
                   json.loads(r["metrics"] or "{}"), r["error"], tuple(opened))

    def __str__(self) -> str:
        failing = [c["name"] for c in self.checks if c["passed"] is False]
        return (f"{self.monitor} {self.window_start:%Y-%m-%d %H:%M:%S}–{self.window_end:%H:%M:%S} "
                f"{self.rows:,} rows {self.status.upper()}"
                + (f": {', '.join(failing)}" if failing else "")
                + (f" ({self.error})" if self.error else "")
                + (f" -> alert #{', #'.join(map(str, self.opened_alerts))}" if self.opened_alerts else ""))


def check_monitor(name: str) -> None:
    """Raise :class:`~cellops.errors.NotFoundError`, listing the monitors, unless ``name``
    is one."""
    store = workspace().store.monitors
    if store.get(name) is None:
        names = [r["name"] for r in store.all()]
        raise NotFoundError(f"No monitor named {name!r}. Monitors: {', '.join(names) or 'none'}; "
                            "create one with cellops.create_monitor or `cellops monitor apply`.")


def monitor_results(name: str, limit: int | None = None) -> list[MonitorResult]:
    """A monitor's results (the last ``limit``), oldest first."""
    check_monitor(name)
    return [MonitorResult.from_row(r) for r in workspace().store.monitors.results(name, limit)]


def monitor_history(name: str, limit: int | None = None) -> Any:
    """A monitor's results as a DataFrame, one row per window (oldest first): window_start,
    window_end, rows, status, drift_share, one column per check (its value) and
    ``<check>.passed``."""
    import pandas as pd

    check_monitor(name)
    rows = workspace().store.monitors.results(name, limit)
    records = []
    for r in rows:
        rec: dict[str, Any] = {"result_id": r["id"], "window_start": _dt(r["window_start"]),
                               "window_end": _dt(r["window_end"]), "rows": r["rows"],
                               "status": r["status"], "drift_share": r["drift_share"],
                               "versions": json.loads(r["versions"] or "[]"), "error": r["error"]}
        for c in json.loads(r["checks"] or "[]"):
            rec[c["name"]] = c["value"]
            rec[f"{c['name']}.passed"] = c["passed"]
        records.append(rec)
    return pd.DataFrame.from_records(records)
