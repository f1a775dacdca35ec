"""Monitors: a model's logged predictions checked window after window.

A monitor is a stored spec (:mod:`.spec`): :func:`create_monitor`, :func:`apply_monitors`
(a ``monitors.yaml``), :func:`get_monitor`, :func:`monitors`, :func:`delete_monitor`.
Evaluating them is :mod:`.evaluation` (``run_monitors``), the loop :mod:`.watching`,
their windows and reference :mod:`.windows`, their results :mod:`.results`, their HTML
:mod:`.report`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import InvalidArgumentError
from ..identity import current_user, require_role
from ..workspaces import workspace
from .results import MonitorResult, _dt, check_monitor, monitor_history
from .spec import MonitorSpecError, load_monitor_file, model_name, normalize
from .windows import load_reference

__all__ = ["Monitor", "apply_monitors", "create_monitor", "delete_monitor", "get_monitor",
           "monitors"]


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
        from .evaluation import run_monitors  # evaluation never imports this module

        return run_monitors(self.name, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "spec": self.spec,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "source": self.source}

    def __repr__(self) -> str:
        return (f"<Monitor {self.name!r} on {self.model} every {self.spec['window']['text']}: "
                f"{', '.join(c['name'] for c in self.spec['checks'])}>")

    def _repr_html_(self) -> str:
        from .report import history_html

        return history_html(self)

    def _ipython_display_(self) -> None:
        from .report import history_report

        history_report(self)._ipython_display_()


def _monitor(row: Mapping[str, Any]) -> Monitor:
    return Monitor(row["name"], row["model"], json.loads(row["spec"]), _dt(row["created_at"]),  # type: ignore[arg-type]
                   row["created_by"], row["source"])


def _check_model(spec: dict[str, Any]) -> None:
    from ..registry.versions import get_model_version

    name, alias = model_name(spec["model"])
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
    _check_model(spec)
    if spec["action"]:
        path = Path(spec["action"]["retrain"]["pipeline"])
        if not path.is_file():
            raise MonitorSpecError(f"The retraining pipeline {str(path)!r} does not exist.")
        spec["action"]["retrain"]["pipeline"] = str(path.absolute())
    load_reference(spec)  # fails now, not at the first window, when it cannot be read
    require_role("editor", "saving a monitor")
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
    check_monitor(name)
    return _monitor(workspace().store.monitors.get(name))


def monitors() -> list[Monitor]:
    """Every monitor of the workspace, by name."""
    return [_monitor(r) for r in workspace().store.monitors.all()]


def delete_monitor(name: str) -> None:
    """Delete a monitor with its results and alerts."""
    get_monitor(name)
    workspace().store.monitors.delete(name)
