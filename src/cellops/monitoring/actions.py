"""What a monitor does when an alert opens: retrain.

``retrain`` writes the window's rows (inputs, prediction, label) to a Parquet file in the
workspace, runs the pipeline file with the monitor's parameters — where ``{window_data}``,
``{monitor}``, ``{alert_id}`` and ``{model}`` are filled in — registers the model of the
training step's run as a new version, and asks for the alias: a protected alias gets a
promotion request for its approvers, an unprotected one moves. Each stage is recorded on
the alert (``actions``: pipeline run, version, request, or the error that stopped it), so
the sidebar and ``cellops alerts list`` link the alert to what it caused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..workspaces import workspace
from .spec import model_name, retrain_overrides

__all__ = ["retrain"]


def retrain(spec: dict[str, Any], alert_ids: list[int], frame: Any,
            result_id: int) -> dict[str, Any]:
    """Run the monitor's retraining pipeline once for the alerts a window opened (a window
    whose drift and performance checks both fail retrains once); the action record, with
    the pipeline run, version and request, goes on each of them and is returned."""
    from ..pipelines.runner import run_pipeline
    from ..registry.governance import PromotionRequest, set_alias
    from ..registry.versions import register_model

    store = workspace().store.monitors
    r = spec["action"]["retrain"]
    registered, _ = model_name(spec["model"])
    record: dict[str, Any] = {"kind": "retrain", "status": "running", "pipeline": r["pipeline"]}
    alert_id = alert_ids[0]

    def save() -> None:
        for a in alert_ids:
            store.add_action(a, record)

    save()
    try:
        folder = workspace().path / "monitoring" / spec["name"]
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / f"alert-{alert_id}-window-{result_id}.parquet"
        frame.drop(columns=[c for c in ("request_id", "row") if c in frame.columns]).to_parquet(data)
        record["window_data"] = str(data)
        context = {"window_data": str(data), "monitor": spec["name"], "alert_id": str(alert_id),
                   "model": registered}
        result = run_pipeline(Path(r["pipeline"]), retrain_overrides(r["parameters"], context),
                              progress=None)
        record["pipeline_run"] = result.run_id
        if not result.ok:
            failed = next((s for s in result.steps.values() if s.error is not None), None)
            raise RuntimeError(f"the pipeline failed at step {failed.name if failed else '?'}: "
                               f"{failed.error if failed else 'see the pipeline run'}")
        step = r.get("step") or list(result.steps)[-1]
        if step not in result.steps:
            raise RuntimeError(f"the pipeline has no step {step!r}")
        run_id = result.steps[step].run_id
        record["step_run"] = run_id
        register = r.get("register") or registered
        version = register_model(run_id, register, tags={"retrained_by": f"alert #{alert_id}",
                                                         "monitor": spec["name"]})
        record["model"], record["version"] = register, version.version
        alias = r.get("alias")
        if alias:
            outcome = set_alias(register, alias, version.version)
            record["alias"] = alias
            if isinstance(outcome, PromotionRequest):
                record["request"] = outcome.id
                record["status"] = "awaiting approval"
            else:
                record["status"] = f"{alias} moved"
        else:
            record["status"] = "registered"
    except Exception as exc:  # noqa: BLE001 - recorded on the alert; the monitor goes on
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
    save()
    return record

