"""Monitors: a model's logged predictions checked window after window.

``create_monitor`` stores a spec (:mod:`.spec`); :func:`run_monitors` evaluates every
complete window not evaluated yet — a time window once it ended more than ``grace`` ago
(the prediction log's writers flush within seconds), a row window once it holds its rows —
stores one result per window, opens alerts for failing checks and runs the monitor's
action when an alert opens. A window whose evaluation fails is stored with its error and
the next window still runs. :func:`watch` loops.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import InvalidArgumentError, NotFoundError
from ..workspaces import workspace
from .. import charts
from .alerting import Alert, _notify, deliver_in_background
from .checks import Evaluator, window_frame
from .spec import MonitorSpecError, load_monitor_file, normalize, parse_duration

__all__ = ["Monitor", "MonitorResult", "apply_monitors", "create_monitor", "delete_monitor",
           "get_monitor", "monitor_history", "monitor_results", "monitors", "run_monitors", "watch"]

MAX_WINDOWS_PER_RUN = 500


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


@dataclass
class Monitor:
    """A stored monitor. ``spec`` is its normalised spec (see :mod:`cellops.monitoring.spec`)."""

    name: str
    model: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str | None
    source: str | None

    @property
    def state(self) -> str:
        """``alerting`` (an alert not resolved), ``ok``, ``failing`` (last window failed but
        its alert is resolved), ``error`` or ``new`` (nothing evaluated yet)."""
        store = workspace().store.monitors
        if store.alerts(state="active", monitor=self.name, limit=1):
            return "alerting"
        last = store.results(self.name, limit=1)
        return last[0]["status"] if last else "new"

    def history(self) -> Any:
        return monitor_history(self.name)

    def run(self, **kw: Any) -> list[MonitorResult]:
        return run_monitors(self.name, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "spec": self.spec,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "source": self.source}

    def __repr__(self) -> str:
        return (f"<Monitor {self.name!r} on {self.model} every {self.spec['window']['text']}: "
                f"{', '.join(c['name'] for c in self.spec['checks'])}>")

    def _repr_html_(self) -> str:
        return history_html(self)

    def _ipython_display_(self) -> None:
        history_report(self)._ipython_display_()


def _monitor(row: Mapping[str, Any]) -> Monitor:
    return Monitor(row["name"], row["model"], json.loads(row["spec"]), _dt(row["created_at"]),  # type: ignore[arg-type]
                   row["created_by"], row["source"])


# -- creating --------------------------------------------------------------------------------
def _model_name(model: str) -> tuple[str, str | None]:
    name, _, alias = model.partition("@")
    return name, alias or None


def _check_model(spec: dict[str, Any]) -> None:
    from ..registry.versions import get_model_version

    name, alias = _model_name(spec["model"])
    get_model_version(name, alias or "latest")  # raises ModelNotFoundError with a hint


def _store_reference(spec: dict[str, Any], reference: Any) -> None:
    """A DataFrame reference is kept as a Parquet artifact, so the monitor outlives it."""
    import pandas as pd

    if isinstance(reference, pd.DataFrame):
        if reference.empty:
            raise InvalidArgumentError("The reference DataFrame has no rows.")
        buf = io.BytesIO()
        reference.to_parquet(buf)
        sha, _ = workspace().artifacts.put(buf.getvalue())
        spec["reference"] = {"artifact": sha, "rows": len(reference)}


def create_monitor(name: str, model: str, reference: Any = None, *, window: str | int = "1d",
                   checks: Iterable[Any] = ("drift",), alert: Mapping[str, Any] | None = None,
                   action: Mapping[str, Any] | None = None, target: str | None = None,
                   grace: str = "30s", categorical: Iterable[str] = (),
                   replace: bool = False) -> Monitor:
    """Create a monitor of ``model`` (``NAME@ALIAS`` or ``NAME``) over its logged predictions.

    ``reference``: a DataFrame (kept as an artifact), a logged dataset's name,
    ``{"file": PATH}``, or None — the dataset the model's current version was trained on.
    ``window``: ``"1h"``, ``"1d"`` ... or ``"10000 rows"``. ``checks``: ``"drift"``,
    ``{"type": "performance", "metric": "accuracy", "min": 0.8}``, ``estimated_performance``,
    ``missing``, ``schema``, ``volume`` (docs/monitoring.md). ``alert``: ``{"webhook": URL}``.
    ``action``: ``{"retrain": {"pipeline": FILE, "parameters": {...}, "alias": ...}}``.
    ``target``: the reference's label column. ``replace`` updates an existing monitor and
    keeps its history.
    """
    import pandas as pd

    raw: dict[str, Any] = {"name": name, "model": model, "window": window, "checks": list(checks),
                           "alert": alert, "action": action, "target": target, "grace": grace,
                           "categorical": list(categorical)}
    if reference is not None and not isinstance(reference, pd.DataFrame):
        raw["reference"] = reference
    spec = normalize(raw)
    _store_reference(spec, reference)
    return _save(spec, None, replace)


def _save(spec: dict[str, Any], source: str | None, replace: bool) -> Monitor:
    from ..registry.identity import current_user

    _check_model(spec)
    if spec["action"]:
        path = Path(spec["action"]["retrain"]["pipeline"])
        if not path.is_file():
            raise MonitorSpecError(f"The retraining pipeline {str(path)!r} does not exist.")
        spec["action"]["retrain"]["pipeline"] = str(path.absolute())
    _load_reference(spec)  # fails now, not at the first window, when it cannot be read
    store = workspace().store.monitors
    if not store.save(spec["name"], spec["model"], spec, current_user(), source, replace=replace):
        raise InvalidArgumentError(
            f"A monitor named {spec['name']!r} exists. Pass replace=True (--replace) to update "
            "it (its history is kept), or delete it first.")
    return get_monitor(spec["name"])


def apply_monitors(path: str | Path) -> list[Monitor]:
    """Create or update every monitor in a ``monitors.yaml`` (all are validated first)."""
    specs = load_monitor_file(path)
    for spec in specs:
        _check_model(spec)
    return [_save(spec, str(Path(path).absolute()), True) for spec in specs]


def get_monitor(name: str) -> Monitor:
    """The monitor named ``name`` (NotFoundError lists the others)."""
    row = workspace().store.monitors.get(name)
    if row is None:
        names = [r["name"] for r in workspace().store.monitors.all()]
        raise NotFoundError(f"No monitor named {name!r}. Monitors: {', '.join(names) or 'none'}; "
                            "create one with cellops.create_monitor or `cellops monitor apply`.")
    return _monitor(row)


def monitors() -> list[Monitor]:
    """Every monitor of the workspace, by name."""
    return [_monitor(r) for r in workspace().store.monitors.all()]


def delete_monitor(name: str) -> None:
    """Delete a monitor with its results and alerts."""
    get_monitor(name)
    workspace().store.monitors.delete(name)


# -- the reference -------------------------------------------------------------------------
_REFERENCES: dict[str, Any] = {}


def _load_reference(spec: dict[str, Any]) -> Any:
    import pandas as pd

    from .drift import as_frame

    ref = spec.get("reference")
    key = json.dumps(ref, sort_keys=True)
    if ref is not None and "artifact" in ref and key in _REFERENCES:
        frame = _REFERENCES[key]
    elif ref is None:
        from ..registry.versions import get_model_version

        name, alias = _model_name(spec["model"])
        version = get_model_version(name, alias or "latest")
        inputs = [d for d in version.lineage if d.get("role", "input") == "input"]
        if not inputs:
            raise MonitorSpecError(
                f"{spec['model']} (version {version.version}) has no training dataset in its "
                "lineage to use as the reference. Log it with cellops.log_dataset in the run that "
                "trained the model, or give reference=.")
        frame, _ = as_frame(inputs[0]["name"], "reference")
    elif "artifact" in ref:
        frame = pd.read_parquet(io.BytesIO(workspace().artifacts.read(ref["artifact"])))
    elif "file" in ref:
        path = Path(ref["file"])
        if not path.is_file():
            raise MonitorSpecError(f"The reference file {str(path)!r} does not exist.")
        frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    else:
        frame, _ = as_frame(ref["dataset"], "reference")
    target = spec.get("target")
    if target and target not in frame.columns:
        raise MonitorSpecError(f"The reference has no target column {target!r}; its columns: "
                               f"{', '.join(map(str, frame.columns[:12]))}.")
    if ref is not None and "artifact" in ref:
        _REFERENCES[key] = frame  # content-addressed: the same key is always the same data
    return frame


# -- running ---------------------------------------------------------------------------------
def _windows(store: Any, row: Mapping[str, Any], spec: dict[str, Any], now_ms: int) -> \
        Iterable[tuple[str, int, int, list[Any], int | None, int | None]]:
    """(key, start, end, prediction rows, new cursor_ms, new cursor_id) per complete window."""
    name, _ = _model_name(spec["model"])
    win = spec["window"]
    if win["kind"] == "rows":
        cursor = int(row["cursor_id"] or 0)
        for _ in range(MAX_WINDOWS_PER_RUN):
            rows = store.predictions_after(name, cursor, win["rows"])
            if sum(r["n_rows"] for r in rows) < win["rows"]:
                return
            first, last = rows[0]["id"], rows[-1]["id"]
            yield (f"id:{first}", rows[0]["at"], rows[-1]["at"] + 1, rows, None, last)
            cursor = last
        return
    length = win["ms"]
    start = row["cursor_ms"]
    if start is None:
        first = store.first_prediction_ms(name)
        if first is None:
            return
        start = first // length * length
    for _ in range(MAX_WINDOWS_PER_RUN):
        end = start + length
        if end + spec.get("grace_ms", 0) > now_ms:
            return
        rows = store.predictions_between(name, start, end)
        yield (f"t:{start}", start, end, rows, end, None)
        start = end


def _model_loader(spec: dict[str, Any]) -> Callable[[int], Any]:
    from ..registry.versions import get_model_version

    name, _ = _model_name(spec["model"])
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
        get_monitor(name)  # raises NotFoundError with the list
    now_ms = int((now or datetime.now(timezone.utc)).timestamp() * 1000)
    say = progress or (lambda _m: None)
    out: list[MonitorResult] = []
    for row in rows:
        assert row is not None
        spec = json.loads(row["spec"])
        try:
            evaluator = Evaluator(spec, _load_reference(spec), _model_loader(spec))
        except Exception as exc:  # noqa: BLE001 - one monitor's broken setup spares the others
            say(f"{row['name']}: cannot evaluate: {exc}")
            continue
        model_name, _ = _model_name(spec["model"])
        for key, start, end, preds, cursor_ms, cursor_id in _windows(store, row, spec, now_ms):
            out.append(_evaluate(store, spec, evaluator, key, start, end, preds, cursor_ms,
                                 cursor_id))
            say(str(out[-1]))
    if store.due_deliveries(limit=1):
        deliver_in_background(deliver_wait_s).join(deliver_wait_s + 1)
    return out


def _evaluate(store: Any, spec: dict[str, Any], evaluator: Evaluator, key: str, start: int,
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
    result_id = store.add_result(name, row, cursor_ms, cursor_id)
    if result_id is None:  # another process evaluated this window first
        return MonitorResult.from_row({**row, "monitor": name, "id": 0})
    opened = []
    for c in failing:
        alert_id, new = store.raise_alert(name, c.name, result_id, c.message, c.value)
        if new:
            opened.append(alert_id)
            alert = Alert.from_row(store.alert(alert_id))
            _notify(alert, "alert.opened", {"check": c.to_dict(), "window": {
                "start": _dt(start).isoformat(), "end": _dt(end).isoformat(),  # type: ignore[union-attr]
                "rows": row["rows"]}})
    if opened and spec.get("action") and frame is not None:
        from .actions import retrain

        retrain(spec, opened, frame, result_id)  # once per window, however many checks failed
    if spec["alert"].get("auto_resolve"):
        from ..registry.identity import current_user

        passed = {c.name for c in results if c.passed is True}
        for a in store.alerts(state="active", monitor=name):
            if a["check_name"] in passed:
                store.move_alert(a["id"], "resolved", f"{current_user()} (auto: the check passed)",
                                 f"passed in the window ending {_dt(end):%Y-%m-%d %H:%M}",  # type: ignore[str-format]
                                 ("open", "acknowledged"))
    return MonitorResult.from_row({**row, "monitor": name, "id": result_id}, opened)


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def watch(name: str | None = None, *, every: str = "5m", iterations: int | None = None,
          progress: Callable[[str], None] | None = print) -> None:
    """:func:`run_monitors` every ``every`` (a duration), forever or ``iterations`` times;
    webhooks that failed are retried on each turn."""
    from .alerting import deliver_pending

    period = parse_duration(every, "every") / 1000
    turn = 0
    while iterations is None or turn < iterations:
        started = time.monotonic()
        run_monitors(name, progress=progress)
        deliver_pending(wait_s=min(10.0, period / 2))
        turn += 1
        if iterations is not None and turn >= iterations:
            break
        time.sleep(max(0.0, period - (time.monotonic() - started)))


def monitor_results(name: str, limit: int | None = None) -> list[MonitorResult]:
    """A monitor's results (the last ``limit``), oldest first."""
    get_monitor(name)
    return [MonitorResult.from_row(r) for r in workspace().store.monitors.results(name, limit)]


def monitor_history(name: str, limit: int | None = None) -> Any:
    """A monitor's results as a DataFrame, one row per window (oldest first): window_start,
    window_end, rows, status, drift_share, one column per check (its value) and
    ``<check>.passed``."""
    import pandas as pd

    get_monitor(name)
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
