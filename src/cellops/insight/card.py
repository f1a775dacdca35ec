"""The model card's Explanations and Fairness sections: from the reports the version's
run logged (``explanation.json``, ``fairness.json``)."""

from __future__ import annotations

import json
from typing import Any

from . import explanations as _explain
from . import fairness_metrics as _fairness


def _report(version: Any, name: str) -> dict[str, Any] | None:
    if not version.run_id:
        return None
    from ..tracking import get_run

    try:
        run = get_run(version.run_id)
        if not any(a["path"] == name for a in run.artifacts):
            return None
        return json.loads(run.read_artifact(name))
    except Exception:  # noqa: BLE001 - a card is written even when a report cannot be read
        return None


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        text = f"{x:.4g}" if isinstance(x, float) else "—" if x is None else str(x)
        return text.replace("|", "\\|").replace("\n", " ")

    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
                     + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def explanation_section(version: Any) -> str | None:
    doc = _report(version, _explain.ARTIFACT)
    if doc is None:
        return None
    what = ("mean drop in score when the feature is shuffled" if doc["method"] == "permutation"
            else "mean absolute SHAP value" + (f" on {doc['output']}" if doc.get("output") else ""))
    rows = [[r["feature"], r["importance"], r["std"]] for r in doc["importances"][:10]]
    return (f"Feature importance ({doc['method']}: {what}; {doc['rows']:,} rows"
            + (f", {doc['n_repeats']} repeats" if doc.get("n_repeats") else "") + "):\n\n"
            + _table(["feature", "importance", "std"], rows))


def fairness_section(version: Any) -> str | None:
    doc = _report(version, _fairness.ARTIFACT)
    if doc is None or not doc.get("groups"):
        return None
    metrics = [k for k in doc["groups"][0] if k != "group"]
    rows = [[", ".join(f"{k}={v}" for k, v in g["group"].items()), *[g[m] for m in metrics]]
            for g in doc["groups"]]
    gaps = "\n".join(f"- **{k}** = {v:.4g} ({_fairness.DEFINITIONS[k]})" if v is not None
                     else f"- **{k}**: not defined" for k, v in doc["gaps"].items())
    return (f"By {', '.join(doc['sensitive_features'])} ({doc['task']}, {doc['rows']:,} rows):\n\n"
            + _table(["group", *[m.replace("_", " ") for m in metrics]], rows) + "\n\n" + gaps)


def version_insights() -> list[dict[str, Any]]:
    """For every registered model version whose run logged an explanation or a fairness
    report: model, version, the top features (feature, importance) and the fairness gaps
    with the sensitive features. What the Registry tab shows beside each version."""
    from ..registry import list_models, search_model_versions

    out = []
    for model in list_models():
        for version in search_model_versions(f"name = '{model.name}'"):
            explanation = _report(version, _explain.ARTIFACT)
            fairness_doc = _report(version, _fairness.ARTIFACT)
            if explanation is None and fairness_doc is None:
                continue
            out.append({
                "model": version.name, "version": version.version,
                "explanation": None if explanation is None else {
                    "method": explanation["method"],
                    "top": [{"feature": r["feature"], "importance": r["importance"]}
                            for r in explanation["importances"][:5]]},
                "fairness": None if fairness_doc is None else {
                    "sensitive_features": fairness_doc["sensitive_features"],
                    "task": fairness_doc["task"], "gaps": fairness_doc["gaps"],
                    "groups": len(fairness_doc["groups"])}})
    return out
