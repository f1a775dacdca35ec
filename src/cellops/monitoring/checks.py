"""Evaluating a monitor's checks on one window of logged predictions.

Each check answers passed (True), failed (False) or "no data" (None: e.g. no labels yet
for a performance check), with the value it measured and the bound it compared with. One
check that cannot be computed is reported as an error on that check; the others still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .drift import drift
from .performance import CBPE, performance


@dataclass
class CheckResult:
    name: str
    type: str
    passed: bool | None
    value: float | None
    bound: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "passed": self.passed, "value": self.value,
                "bound": self.bound, "message": self.message, "details": self.details}


@dataclass
class Window:
    """One window: its rows (inputs, ``prediction``, ``label``, ``version``) and the
    features the reference has."""

    frame: Any
    features: list[str]


def window_frame(rows: list[Any], labels: dict[tuple[str, int], tuple[str, int]]) -> Any:
    """Predicted rows of these logged requests as a DataFrame: the input columns, then
    ``prediction, label, version, request_id, row``."""
    import pandas as pd

    from ..serving.history import log_frame

    frame = log_frame(rows, labels)
    if frame.empty:
        return pd.DataFrame()
    tail = ["prediction", "label", "version", "request_id", "row"]
    log_only = {"time", "model", "source", "status", "latency_ms", "labeled_at"}
    inputs = [c for c in frame.columns if c not in log_only and c not in tail]
    return frame[inputs + tail]


def _bound(check: dict[str, Any]) -> str:
    parts = []
    if "min" in check:
        parts.append(f">= {check['min']:g}")
    if "max" in check:
        parts.append(f"<= {check['max']:g}")
    return " and ".join(parts)


def _within(value: float, check: dict[str, Any]) -> bool:
    return ("min" not in check or value >= check["min"]) and \
        ("max" not in check or value <= check["max"])


class Evaluator:
    """Runs a monitor's checks; keeps what is costly (the reference's kinds, fitted CBPEs)
    across the windows of one run."""

    def __init__(self, spec: dict[str, Any], reference: Any, model_loader: Any) -> None:
        self.spec = spec
        self.reference = reference
        target = spec.get("target")
        self.features = [str(c) for c in reference.columns if str(c) != target]
        self.model_loader = model_loader  # version -> fitted model
        self._cbpe: dict[tuple[int, float], CBPE] = {}

    def run(self, frame: Any) -> list[CheckResult]:
        out = []
        for check in self.spec["checks"]:
            try:
                out.append(getattr(self, "_" + check["type"])(check, frame))
            except Exception as exc:  # noqa: BLE001 - one check's failure is reported, not fatal
                out.append(CheckResult(check["name"], check["type"], None, None, _bound(check),
                                       f"could not be computed: {exc}", {"error": str(exc)}))
        return out

    # -- the checks ------------------------------------------------------------------------------
    def _drift(self, check: dict[str, Any], frame: Any) -> CheckResult:
        if frame.empty:
            return CheckResult(check["name"], "drift", None, None, "", "no predictions")
        present = [c for c in self.features if c in frame.columns]
        if not present:
            raise ValueError("the window has none of the reference's columns")
        report = drift(self.reference[present], frame[present],
                       columns=check.get("columns"), method=check.get("method", "auto"),
                       threshold=check.get("threshold"), drift_share=check["share"],
                       categorical=[c for c in self.spec.get("categorical", []) if c in present])
        rows = report.to_dict()["columns"]
        details = {"drifted_columns": report.drifted_columns,
                   "columns": {r["column"]: {"test": r["test"], "statistic": r["statistic"],
                                             "threshold": r["threshold"],
                                             "value_kind": r["value_kind"],
                                             "drifted": r["drifted"]} for r in rows},
                   # The worst columns' distributions, reference vs current, for the sidebar.
                   "distributions": {name: report.distributions[name]
                                     for name in worst_columns(rows)[:WORST_SHOWN]
                                     if name in report.distributions}}
        if "columns" in check:
            bad = report.drifted_columns
            return CheckResult(check["name"], "drift", not bad, float(len(bad)), "no drift",
                               f"drifted: {named_some(bad)}" if bad else "no named column drifted",
                               details)
        return CheckResult(check["name"], "drift", not report.drifted, report.share,
                           f"< {check['share']:g}",
                           f"{len(report.drifted_columns)} of {len(report.columns)} columns drifted"
                           + (f" ({named_some(report.drifted_columns)})"
                              if report.drifted_columns else ""), details)

    def _performance(self, check: dict[str, Any], frame: Any) -> CheckResult:
        metric = check["metric"]
        labelled = frame[frame["label"].notna()] if "label" in frame.columns else frame.iloc[:0]
        if labelled.empty:
            return CheckResult(check["name"], "performance", None, None, _bound(check),
                               "no labels logged for this window yet")
        proba = None
        if metric == "roc_auc":
            proba = self._proba(labelled)
        got = performance(labelled["label"].tolist(), labelled["prediction"].tolist(),
                          y_proba=proba)
        if metric not in got:
            return CheckResult(check["name"], "performance", None, None, _bound(check),
                               f"{metric} does not apply to these labels", {"metrics": got})
        value = got[metric]
        ok = _within(value, check)
        return CheckResult(check["name"], "performance", ok, value, _bound(check),
                           f"{metric} {value:.4g} on {len(labelled)} labelled rows", {"metrics": got})

    def _estimated_performance(self, check: dict[str, Any], frame: Any) -> CheckResult:
        if frame.empty:
            return CheckResult(check["name"], "estimated_performance", None, None, _bound(check),
                               "no predictions")
        metric = check["metric"]
        version = int(frame["version"].mode().iloc[0])
        cbpe = self._fitted_cbpe(version, check.get("threshold", 0.5))
        proba = self._proba(frame, version)
        est = cbpe.estimate(proba, frame["label"].tolist() if "label" in frame.columns else None)[metric]
        ok = _within(est.value, check)
        msg = f"estimated {metric} {est.value:.4g} ± {3 * est.sampling_error:.2g}"
        if est.realized is not None:
            msg += f" (realised {est.realized:.4g})"
        return CheckResult(check["name"], "estimated_performance", ok, est.value, _bound(check),
                           msg, {"estimate": est.to_dict(), "version": version,
                                 "calibrated": cbpe.calibrated})

    def _missing(self, check: dict[str, Any], frame: Any) -> CheckResult:
        if frame.empty:
            return CheckResult(check["name"], "missing", None, None, f"<= {check['max']:g}",
                               "no predictions")
        cols = check.get("columns") or [c for c in self.features if c in frame.columns]
        shares = {c: float(frame[c].isna().mean()) if c in frame.columns else 1.0 for c in cols}
        worst = max(shares, key=shares.get) if shares else None
        value = shares[worst] if worst else 0.0
        ok = value <= check["max"]
        return CheckResult(check["name"], "missing", ok, value, f"<= {check['max']:g}",
                           f"highest missing share {value:.1%} ({worst})" if worst else "no columns",
                           {"shares": shares})

    def _schema(self, check: dict[str, Any], frame: Any) -> CheckResult:
        if frame.empty:
            return CheckResult(check["name"], "schema", None, None, "no change", "no predictions")
        import pandas as pd

        have = set(frame.columns) - {"prediction", "label", "version", "request_id", "row"}
        missing = [c for c in self.features if c not in have]
        new = sorted(have - set(self.features))
        changed = []
        for c in self.features:
            if c in frame.columns:
                ref_num = pd.api.types.is_numeric_dtype(self.reference[c])
                cur = frame[c].dropna()
                if len(cur) and ref_num != pd.api.types.is_numeric_dtype(cur):
                    changed.append(c)
        problems = len(missing) + len(new) + len(changed)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
            ([f"new {', '.join(new)}"] if new else []) + \
            ([f"type changed {', '.join(changed)}"] if changed else [])
        return CheckResult(check["name"], "schema", problems == 0, float(problems), "no change",
                           "; ".join(parts) or "same columns and types",
                           {"missing": missing, "new": new, "changed": changed})

    def _volume(self, check: dict[str, Any], frame: Any) -> CheckResult:
        n = float(len(frame))
        return CheckResult(check["name"], "volume", _within(n, check), n, _bound(check),
                           f"{int(n):,} predicted rows")

    def _fairness(self, check: dict[str, Any], frame: Any) -> CheckResult:
        """A gap between the groups of a logged column (``cellops.fairness``): demographic
        parity from the predictions alone; equalized odds and error gaps on the window's
        labelled rows."""
        from ..insight import fairness

        metric, columns = check["metric"], check["sensitive"]
        if frame.empty:
            return CheckResult(check["name"], "fairness", None, None, _bound(check), "no predictions")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the prediction log has no column {', '.join(missing)} (log it with "
                             "the request, or check another column)")
        needs_labels = not metric.startswith("demographic_parity")
        rows = frame[frame["label"].notna()] if needs_labels and "label" in frame.columns else frame
        if needs_labels and (rows.empty or "label" not in frame.columns):
            return CheckResult(check["name"], "fairness", None, None, _bound(check),
                               "no labels logged for this window yet")
        predictions = rows["prediction"].to_numpy()
        truth = _same_kind(rows["label"], predictions) if needs_labels else predictions
        report = fairness(predictions, rows, truth, sensitive_features=columns, metrics=[metric],
                          log=False)
        value = report.gaps[metric]
        if value != value:
            return CheckResult(check["name"], "fairness", None, None, _bound(check),
                               f"{metric} is not defined for this window", report.to_dict())
        return CheckResult(check["name"], "fairness", _within(value, check), value, _bound(check),
                           f"{metric} {value:.4g} across {len(report.by_group)} groups of "
                           f"{', '.join(columns)}", {"groups": report.to_dict()["groups"]})

    # -- helpers ---------------------------------------------------------------------------------
    def _proba(self, frame: Any, version: int | None = None) -> np.ndarray:
        if version is None:
            version = int(frame["version"].mode().iloc[0])
        model = self.model_loader(version)
        if not hasattr(model, "predict_proba"):
            raise ValueError(f"version {version} has no predict_proba")
        p = np.asarray(model.predict_proba(frame[self.features]))
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError("estimated performance is for binary classifiers (two classes)")
        return p[:, 1]

    def _fitted_cbpe(self, version: int, threshold: float) -> CBPE:
        key = (version, threshold)
        if key not in self._cbpe:
            target = self.spec["target"]
            if target not in self.reference.columns:
                raise ValueError(f"the reference has no target column {target!r}")
            ref = self.reference[self.reference[target].notna()]
            model = self.model_loader(version)
            classes = list(getattr(model, "classes_", [0, 1]))
            y = (ref[target].to_numpy() == classes[-1]).astype(int)
            self._cbpe[key] = CBPE(threshold=threshold).fit(self._proba(ref, version), y)
        return self._cbpe[key]


def _same_kind(labels: Any, predictions: Any) -> Any:
    """Logged labels (kept as text) in the predictions' type, so "1" and 1 compare equal."""
    import numpy as np

    values = labels.to_numpy()
    if predictions.dtype.kind in "iufb":
        try:
            return values.astype(float).astype(predictions.dtype)
        except (TypeError, ValueError):
            return values
    return values.astype(str) if predictions.dtype.kind in "OUS" else np.asarray(values)


def named_some(names: list[str], shown: int = 5) -> str:
    """The first ``shown`` names, and how many more there are: "a, b, c, d, e +11 more"."""
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" +{rest} more" if rest > 0 else "")


WORST_SHOWN = 3


def worst_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Drifted columns, furthest past their threshold first (a p-value that far under it,
    a distance that far over it)."""
    def severity(r: dict[str, Any]) -> float:
        stat, limit = r["statistic"] or 0.0, r["threshold"] or 0.0
        if r["value_kind"] == "p_value":
            return limit / stat if stat > 0 else float("inf")
        return stat / limit if limit > 0 else stat
    return [r["column"] for r in sorted((r for r in rows if r["drifted"]), key=severity,
                                        reverse=True)]
