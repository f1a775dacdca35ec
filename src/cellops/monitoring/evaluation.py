"""Evaluating monitors: :func:`run_monitors` evaluates every complete window not evaluated
yet, stores one result per window, opens alerts for failing checks, runs the monitor's
action when an alert opens, and resolves alerts whose check passed (``auto_resolve``). A
window whose evaluation fails is stored with its error and the next window still runs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from ..identity import current_user
from ..workspaces import workspace
from .actions import retrain
from .alerting import Alert, _notify, deliver_in_background
from .checks import Evaluator, window_frame
from .results import MonitorResult, _dt, check_monitor
from .spec import model_name
from .windows import load_reference, windows

__all__ = ["run_monitors"]


def _model_loader(spec: dict[str, Any]) -> Callable[[int], Any]:
    from ..registry.versions import get_model_version

    name, _ = model_name(spec["model"])
    cache: dict[int, Any] = {}

    def load(version: int) -> Any:
        if version not in cache:
            cache[version] = get_model_version(name, version).load()
        return cache[version]

    return load


def run_monitors(name: str | None = None, *, now: datetime | None = None,
                 deliver_wait_s: float = 10.0, progress: Callable[[str], None] | None = None) -> \
        list[MonitorResult]:
    """Evaluate every complete window not evaluated yet, of one monitor or all; returns the
    new results, oldest first. Alerts open for failing checks; actions run when one opens;
    webhooks are then delivered for up to ``deliver_wait_s`` seconds (the rest later)."""
    ws = workspace()
    store = ws.store.monitors
    ws.flush()
    rows = [store.get(name)] if name else store.all()
    if name and rows[0] is None:
        check_monitor(name)  # raises NotFoundError with the list
    now_ms = int((now or datetime.now(timezone.utc)).timestamp() * 1000)
    say = progress or (lambda _m: None)
    out: list[MonitorResult] = []
    for row in rows:
        assert row is not None
        spec = json.loads(row["spec"])
        try:
            evaluator = Evaluator(spec, load_reference(spec), _model_loader(spec))
        except Exception as exc:  # noqa: BLE001 - one monitor's broken setup spares the others
            say(f"{row['name']}: cannot evaluate: {exc}")
            continue
        for key, start, end, preds, cursor_ms, cursor_id in windows(store, row, spec, now_ms):
            out.append(evaluate(store, spec, evaluator, key, start, end, preds, cursor_ms,
                                 cursor_id))
            say(str(out[-1]))
    if store.due_deliveries(limit=1):
        deliver_in_background(deliver_wait_s).join(deliver_wait_s + 1)
    return out


def evaluate(store: Any, spec: dict[str, Any], evaluator: Evaluator, key: str, start: int,
              end: int, preds: list[Any], cursor_ms: int | None,
              cursor_id: int | None) -> MonitorResult:
    from ..store.core import now_ms

    name = spec["name"]
    frame = None
    try:
        labels = workspace().store.predictions.labels_for(r["request_id"] for r in preds)
        frame = window_frame(preds, labels)
        results = evaluator.run(frame)
        failing = [c for c in results if c.passed is False]
        status = "failing" if failing else ("empty" if frame.empty else "ok")
        error = None
    except Exception as exc:  # noqa: BLE001 - a window that cannot be evaluated is recorded
        results, failing, status, error = [], [], "error", f"{type(exc).__name__}: {exc}"
    metrics: dict[str, Any] = {}
    for c in results:
        if c.type in ("performance", "estimated_performance") and c.value is not None:
            metrics[c.name] = c.details.get("estimate", {"value": c.value})
    drift_share = next((c.value for c in results if c.type == "drift" and "columns" not in
                        next(k for k in spec["checks"] if k["name"] == c.name)
                        and c.value is not None), None)
    versions = sorted({int(v) for v in frame["version"].dropna()}) if frame is not None and \
        not frame.empty else []
    row = {"window_key": key, "window_start": start, "window_end": end,
           "first_id": preds[0]["id"] if preds else None,
           "last_id": preds[-1]["id"] if preds else None,
           "rows": 0 if frame is None else len(frame), "status": status,
           "checks": json.dumps([c.to_dict() for c in results], default=_plain),
           "drift_share": drift_share, "metrics": json.dumps(metrics, default=_plain),
           "versions": json.dumps(versions), "evaluated_at": now_ms(), "error": error}
    opened = []
    # One unit of work: the window's result, the alerts it opens, their webhooks queued and
    # the alerts it resolves are stored together or not at all (a crash between them left a
    # result whose alert never opened). Retraining runs a pipeline: after it, outside.
    with workspace().store.transaction() as tx:
        result_id = tx.monitors.add_result(name, row, cursor_ms, cursor_id)
        if result_id is None:  # another process evaluated this window first
            return MonitorResult.from_row({**row, "monitor": name, "id": 0})
        for c in failing:
            alert_id, new = tx.monitors.raise_alert(name, c.name, result_id, c.message, c.value)
            if new:
                opened.append(alert_id)
                alert = Alert.from_row(tx.monitors.alert(alert_id))
                _notify(alert, "alert.opened", {"check": c.to_dict(), "window": {
                    "start": _dt(start).isoformat(), "end": _dt(end).isoformat(),  # type: ignore[union-attr]
                    "rows": row["rows"]}})
        if spec["alert"].get("auto_resolve"):
            passed = {c.name for c in results if c.passed is True}
            for a in tx.monitors.alerts(state="active", monitor=name):
                if a["check_name"] in passed:
                    tx.monitors.move_alert(
                        a["id"], "resolved", f"{current_user()} (auto: the check passed)",
                        f"passed in the window ending {_dt(end):%Y-%m-%d %H:%M}",  # type: ignore[str-format]
                        ("open", "acknowledged"))
    if opened and spec.get("action") and frame is not None:
        retrain(spec, opened, frame, result_id)  # once per window, however many checks failed
    return MonitorResult.from_row({**row, "monitor": name, "id": result_id}, opened)


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)
