"""Fairness: how a model's predictions differ between groups of people.

:func:`fairness` computes, per group of the sensitive feature(s) (several columns make
intersectional groups, as fairlearn's ``MetricFrame`` does), the count and — for a
classifier — accuracy, selection rate, true and false positive rates; for a regressor the
mean absolute error and mean prediction. From them the gaps:

- ``demographic_parity_difference``: the largest minus the smallest selection rate;
- ``demographic_parity_ratio``: the smallest over the largest selection rate;
- ``equalized_odds_difference``: the larger of the true-positive-rate gap and the
  false-positive-rate gap (each the largest minus the smallest across groups);
- ``equalized_odds_ratio``: the smaller of the two rates' min/max ratios;
- for regression, ``mae_difference`` and ``mae_ratio``.

These equal fairlearn's ``demographic_parity_difference`` / ``_ratio`` and
``equalized_odds_difference`` / ``_ratio`` (tested against it); the arithmetic is numpy
group sums, so a million rows take a fraction of a second. The report is logged to the
active run — each gap as a metric ``fairness.<gap>`` (so a protected alias can gate on
``metrics.fairness.demographic_parity_difference < 0.1``) and the whole report as
``fairness.json`` — and is a section of the model card.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..errors import InvalidArgumentError

ARTIFACT = "fairness.json"
CLASSIFICATION_GAPS = ("demographic_parity_difference", "demographic_parity_ratio",
                       "equalized_odds_difference", "equalized_odds_ratio")
REGRESSION_GAPS = ("mae_difference", "mae_ratio")
DEFINITIONS = {
    "demographic_parity_difference": "largest minus smallest selection rate across groups",
    "demographic_parity_ratio": "smallest over largest selection rate",
    "equalized_odds_difference": "larger of the true- and false-positive-rate gaps",
    "equalized_odds_ratio": "smaller of the true- and false-positive-rate min/max ratios",
    "mae_difference": "largest minus smallest mean absolute error across groups",
    "mae_ratio": "smallest over largest mean absolute error",
}


@dataclass
class FairnessReport:
    """Metrics by group and the gaps between groups."""

    task: str  # "classification" or "regression"
    sensitive: list[str]
    by_group: Any  # DataFrame: one row per group
    gaps: dict[str, float]
    pos_label: Any = None
    rows: int = 0
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        groups = []
        for key, row in self.by_group.iterrows():
            values = key if isinstance(key, tuple) else (key,)
            groups.append({"group": dict(zip(self.sensitive, map(_plain, values))),
                           **{k: _plain(v) for k, v in row.items()}})
        return {"task": self.task, "sensitive_features": self.sensitive,
                "pos_label": _plain(self.pos_label), "rows": self.rows,
                "gaps": {k: _plain(v) for k, v in self.gaps.items()}, "groups": groups,
                "notes": self.notes, "run_id": self.run_id}

    def __repr__(self) -> str:
        gaps = ", ".join(f"{k}={v:.4g}" for k, v in self.gaps.items())
        return f"<FairnessReport {self.task} by {', '.join(self.sensitive)}: {gaps}>"

    def _repr_html_(self) -> str:
        return report_html(self.to_dict())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fairness(model_or_predictions: Any, X: Any, y: Any, *,
             sensitive_features: str | Sequence[str] | Any, metrics: Iterable[str] | None = None,
             pos_label: Any = None, log: bool = True) -> FairnessReport:
    """Compare a model's predictions across groups (see the module's docstring).

    ``model_or_predictions`` is a fitted model (its ``predict(X)``; sensitive columns it was
    not trained on are dropped first) or the predictions themselves. ``sensitive_features``
    names columns of ``X`` (one, or several for intersectional groups), or is an array or
    Series of group labels. ``metrics`` limits the gaps reported. ``pos_label`` is the
    positive class of a binary classifier (default: 1 or True, else the larger label).
    With ``log`` and an active run, the gaps are logged as ``fairness.<gap>`` metrics and
    the report as ``fairness.json``.
    """
    import numpy as np
    import pandas as pd

    frame = X if isinstance(X, pd.DataFrame) else None
    groups, names = _groups(sensitive_features, frame, len(y) if hasattr(y, "__len__") else None)
    y_true = np.asarray(y)
    y_pred = _predictions(model_or_predictions, X, names if frame is not None else [])
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise InvalidArgumentError(f"y ({len(y_true)} rows), the predictions ({len(y_pred)}) and the "
                                   f"sensitive features ({len(groups)}) must have the same length.")
    if len(y_true) == 0:
        raise InvalidArgumentError("There are no rows to compare.")
    codes, uniques = _group_codes(groups)
    if (codes < 0).any():
        raise InvalidArgumentError("A sensitive feature is missing (NaN) in some rows: fill it "
                                   "(e.g. with 'unknown') so those rows form a group.")
    n_groups = len(uniques)
    count = np.bincount(codes, minlength=n_groups).astype(float)
    notes: list[str] = []
    if _is_classification(y_true, y_pred):
        task = "classification"
        labels = pd.unique(np.concatenate([pd.unique(y_true), pd.unique(y_pred)]))
        positive = _positive(labels, pos_label)
        if len(labels) > 2:
            notes.append(f"{len(labels)} classes: selection and error rates are for "
                         f"class {positive!r} against the rest.")
        t, p = y_true == positive, y_pred == positive
        acc = np.bincount(codes, weights=(y_true == y_pred), minlength=n_groups) / count
        selection = np.bincount(codes, weights=p, minlength=n_groups) / count
        pos = np.bincount(codes, weights=t, minlength=n_groups)
        neg = count - pos
        with np.errstate(divide="ignore", invalid="ignore"):
            tpr = np.bincount(codes, weights=t & p, minlength=n_groups) / pos
            fpr = np.bincount(codes, weights=~t & p, minlength=n_groups) / neg
        table = {"count": count.astype(int), "accuracy": acc, "selection_rate": selection,
                 "true_positive_rate": tpr, "false_positive_rate": fpr}
        gaps = {"demographic_parity_difference": _diff(selection),
                "demographic_parity_ratio": _ratio(selection),
                "equalized_odds_difference": max(_diff(tpr), _diff(fpr)),
                "equalized_odds_ratio": min(_ratio(tpr), _ratio(fpr))}
    else:
        task, positive = "regression", None
        y_true, y_pred = y_true.astype(float), np.asarray(y_pred, dtype=float)
        mae = np.bincount(codes, weights=np.abs(y_true - y_pred), minlength=n_groups) / count
        table = {"count": count.astype(int), "mae": mae,
                 "mean_prediction": np.bincount(codes, weights=y_pred, minlength=n_groups) / count}
        gaps = {"mae_difference": _diff(mae), "mae_ratio": _ratio(mae)}
    if metrics is not None:
        wanted = list(metrics)
        unknown = [m for m in wanted if m not in gaps]
        if unknown:
            raise InvalidArgumentError(f"No fairness metric {', '.join(map(repr, unknown))} for "
                                       f"{task}; there are {', '.join(gaps)}.")
        gaps = {m: gaps[m] for m in wanted}
    index = uniques if groups.shape[1] > 1 else pd.Index(uniques, name=names[0])
    by_group = pd.DataFrame(table, index=index)
    report = FairnessReport(task, names, by_group, gaps, positive, int(len(y_true)), notes=notes)
    if log:
        _log(report)
    return report


def _groups(sensitive: Any, frame: Any, n: int | None) -> tuple[Any, list[str]]:
    import pandas as pd

    if isinstance(sensitive, str) or (isinstance(sensitive, (list, tuple))
                                      and sensitive and all(isinstance(s, str) for s in sensitive)):
        names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        if frame is None:
            raise InvalidArgumentError("sensitive_features names columns, so X must be a DataFrame "
                                       "holding them (or pass the group labels themselves).")
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise InvalidArgumentError(f"X has no column {', '.join(map(repr, missing))} (a sensitive "
                                       "feature).")
        return frame[names].reset_index(drop=True), names
    if isinstance(sensitive, pd.Series):
        return sensitive.reset_index(drop=True).to_frame(sensitive.name or "group"), [str(sensitive.name or "group")]
    if isinstance(sensitive, pd.DataFrame):
        return sensitive.reset_index(drop=True), [str(c) for c in sensitive.columns]
    try:
        values = list(sensitive)
    except TypeError:
        raise InvalidArgumentError("sensitive_features is a column name, a list of names, or the "
                                   "group labels (an array or Series).") from None
    return pd.DataFrame({"group": values}), ["group"]


def _group_codes(groups: Any) -> tuple[Any, Any]:
    """One integer code per row's group, and the groups (labels, or a MultiIndex of label
    tuples for several columns): each column factorized, the codes combined as integers
    (much faster than factorizing tuples)."""
    import numpy as np
    import pandas as pd

    parts = [pd.factorize(groups[c]) for c in groups.columns]
    if len(parts) == 1:
        return parts[0]
    if any((c < 0).any() for c, _ in parts):
        return np.full(len(groups), -1), None
    dims = tuple(len(u) for _, u in parts)
    combined = np.ravel_multi_index(tuple(c for c, _ in parts), dims)
    codes, seen = pd.factorize(combined)
    positions = np.unravel_index(seen, dims)
    return codes, pd.MultiIndex.from_arrays([u[i] for (_, u), i in zip(parts, positions)],
                                            names=list(groups.columns))


def _predictions(model: Any, X: Any, sensitive_columns: list[str]) -> Any:
    import numpy as np

    if not hasattr(model, "predict"):
        return np.asarray(model)
    inputs = X
    known = getattr(model, "feature_names_in_", None)
    if known is not None and hasattr(X, "columns"):
        extra = [c for c in X.columns if c not in set(known)]
        missing = [c for c in known if c not in set(X.columns)]
        if missing:
            raise InvalidArgumentError(f"X lacks the model's column(s) {', '.join(map(repr, missing[:10]))}.")
        inputs = X[list(known)] if extra else X
    elif sensitive_columns and hasattr(X, "drop"):
        inputs = X.drop(columns=sensitive_columns)
    return np.asarray(model.predict(inputs))


def _is_classification(y_true: Any, y_pred: Any) -> bool:
    """Labels (text, booleans, or a few whole numbers) rather than quantities."""
    import numpy as np

    if y_true.dtype.kind in "bOUS" or y_pred.dtype.kind in "bOUS":
        return True
    whole = all(values.dtype.kind in "iu" or bool(np.all(values == np.round(values)))
                for values in (y_true.astype(float), y_pred.astype(float)))
    return whole and len(np.unique(y_true)) <= 20


def _positive(labels: Any, pos_label: Any) -> Any:
    values = list(labels)
    if pos_label is not None:
        if pos_label not in values:
            raise InvalidArgumentError(f"pos_label {pos_label!r} is not among the labels "
                                       f"({', '.join(map(repr, values[:10]))}).")
        return pos_label
    for candidate in (1, True, "1", "yes", "true"):
        if candidate in values:
            return candidate
    return sorted(values, key=str)[-1]


def _diff(values: Any) -> float:
    import numpy as np

    finite = values[np.isfinite(values)]
    return float(finite.max() - finite.min()) if len(finite) else float("nan")


def _ratio(values: Any) -> float:
    import numpy as np

    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan")
    top = finite.max()
    return float(finite.min() / top) if top > 0 else 1.0


def _log(report: FairnessReport) -> None:
    from ..tracking import active_run

    run = active_run()
    if run is None:
        return
    run.log_metrics({f"fairness.{k}": v for k, v in report.gaps.items() if v == v})
    report.run_id = run.id
    run.log_text(json.dumps(report.to_dict(), indent=1), ARTIFACT)


def report_html(doc: dict[str, Any]) -> str:
    """A fairness report (its ``to_dict()``) as HTML that reads without a kernel."""
    cell = "padding:2px 8px;text-align:right;border-bottom:1px solid var(--jp-border-color2,#ddd)"
    metrics = [k for k in (doc["groups"][0] if doc["groups"] else {}) if k != "group"]
    head = "".join(f"<th style='{cell}'>{html.escape(h)}</th>"
                   for h in [*doc["sensitive_features"], *(m.replace("_", " ") for m in metrics)])
    rows = "".join("<tr>" + "".join(f"<td style='{cell}'>{html.escape(str(v))}</td>"
                                    for v in g["group"].values())
                   + "".join(f"<td style='{cell}'>{_fmt(g[m])}</td>" for m in metrics) + "</tr>"
                   for g in doc["groups"])
    gaps = "".join(f"<li><b>{html.escape(k)}</b> = {_fmt(v)} "
                   f"<span style='color:var(--jp-ui-font-color2,#616161)'>({html.escape(DEFINITIONS[k])})</span></li>"
                   for k, v in doc["gaps"].items())
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in doc.get("notes") or [])
    return (f"<div class='cellops-fairness' style='color:var(--jp-ui-font-color1,#222)'>"
            f"<b>Fairness</b> ({doc['task']}, {doc['rows']:,} rows"
            + (f", positive class {html.escape(repr(doc['pos_label']))}" if doc.get("pos_label") is not None else "")
            + f")<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
              f"<tbody>{rows}</tbody></table><ul style='margin:4px 0'>{gaps}</ul>{notes}</div>")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))
