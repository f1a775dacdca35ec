"""Explanations: which inputs a model's predictions depend on, and how.

:func:`explain` computes scikit-learn's permutation importance (the drop in the model's
score when one column is shuffled, mean and standard deviation over ``n_repeats``
shuffles), the partial dependence of the prediction on the most important features
(the average prediction as one feature sweeps its range, the others as they are), and —
when the optional ``shap`` package is installed and ``method="shap"`` — mean absolute SHAP
values. The report is drawn in the notebook (charts with hover values; static SVG when
the notebook is reopened without a kernel), logged to the active run as
``explanation.json``, and is a section of the model card.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import InvalidArgumentError
from .fairness_metrics import _fmt, _plain

ARTIFACT = "explanation.json"
METHODS = ("permutation", "shap")


@dataclass
class Explanation:
    """Feature importances (a DataFrame: feature, importance, std) and partial dependence
    of the top features (feature -> {"values": grid, "average": predictions})."""

    method: str
    importances: Any
    partial_dependence: dict[str, dict[str, list[float]]]
    scoring: str | None = None
    n_repeats: int = 0
    rows: int = 0
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    output: str | None = None  # what SHAP values are in ("P(class=1)", "the prediction")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "scoring": self.scoring, "n_repeats": self.n_repeats,
                "output": self.output,
                "rows": self.rows, "run_id": self.run_id, "notes": self.notes,
                "importances": [{k: _plain(v) for k, v in r.items()}
                                for r in self.importances.to_dict("records")],
                "partial_dependence": self.partial_dependence}

    def top(self, n: int = 10) -> list[str]:
        return list(self.importances["feature"][:n])

    def __repr__(self) -> str:
        shown = ", ".join(f"{r.feature}={r.importance:.3g}" for r in self.importances.head(5).itertuples())
        return f"<Explanation {self.method}: {shown}>"

    def _ipython_display_(self) -> None:
        self.notebook_view()._ipython_display_()

    def _repr_html_(self) -> str:
        return self.notebook_view().html()

    def notebook_view(self) -> Any:
        """The table of importances, then the charts (importances, partial dependence)."""
        from .. import charts

        top = self.importances.head(15)
        bars = charts.bar_figure({"importance": ([str(f) for f in top["feature"]],
                                                 {"mean drop in score" if self.method == "permutation"
                                                  else "mean |SHAP value|": top["importance"].tolist()})},
                                 y_label="", columns=1, percent=False)
        svg = charts.bars("importance", [str(f) for f in top["feature"]],
                          {"importance": top["importance"].tolist()}, y_label="", percent=False)
        parts: list[Any] = [report_html(self.to_dict()), charts.Chart(bars, svg, "importance")]
        if self.partial_dependence:
            panels = {f: {"average prediction": list(zip(d["values"], d["average"]))}
                      for f, d in self.partial_dependence.items()}
            parts.append(charts.line_chart(panels, x_kind="value", title="partial dependence"))
        return charts.Report(parts)


def explain(model: Any, X: Any, y: Any = None, *, method: str = "permutation",
            features: Iterable[str] | None = None, n_repeats: int = 5, scoring: Any = None,
            top: int = 3, grid_resolution: int = 20, random_state: int | None = 0,
            n_jobs: int | None = None, log: bool = True) -> Explanation:
    """Explain a fitted model on ``X`` (and ``y``, which permutation importance needs).

    ``method``: ``"permutation"`` (scikit-learn's ``permutation_importance`` with
    ``scoring``, default the model's own ``score``) or ``"shap"`` (mean absolute SHAP values
    on a classifier's predicted probability or a regressor's prediction, as
    ``report.output`` says; on a sample of the rows for large ``X``; needs ``pip install
    shap``). ``features`` limits the columns explained; ``top`` the
    number of features whose partial dependence is computed. With ``log`` and an active
    run, the report is logged as ``explanation.json``.
    """
    import numpy as np
    import pandas as pd

    if method not in METHODS:
        raise InvalidArgumentError(f"method is one of {', '.join(METHODS)}, not {method!r}.")
    if not hasattr(model, "predict"):
        raise InvalidArgumentError(f"explain takes a fitted model (with predict), not {type(model).__name__}.")
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(columns=str)
    columns = [str(c) for c in frame.columns]
    chosen = columns if features is None else [str(f) for f in features]
    unknown = [f for f in chosen if f not in columns]
    if unknown:
        raise InvalidArgumentError(f"X has no column {', '.join(map(repr, unknown))}.")
    if int(n_repeats) < 1:
        raise InvalidArgumentError("n_repeats is 1 or more.")
    notes: list[str] = []
    if method == "permutation":
        if y is None:
            raise InvalidArgumentError("Permutation importance needs y (the true values): "
                                       "explain(model, X, y).")
        from sklearn.inspection import permutation_importance

        model_input = X if isinstance(X, pd.DataFrame) else np.asarray(X)
        result = permutation_importance(model, model_input, y, scoring=scoring, n_repeats=int(n_repeats),
                                        random_state=random_state, n_jobs=n_jobs)
        keep = [columns.index(f) for f in chosen]
        importances = pd.DataFrame({"feature": chosen,
                                    "importance": result.importances_mean[keep],
                                    "std": result.importances_std[keep]})
    else:
        try:
            import shap  # noqa: F401 - only to say how to get it
        except ImportError:
            raise InvalidArgumentError("method='shap' needs the shap package: pip install shap "
                                       "(or use method='permutation').") from None
        mean, std, output, explained = _shap(model, frame, random_state, notes)
        keep = [columns.index(f) for f in chosen]
        importances = pd.DataFrame({"feature": chosen, "importance": mean[keep], "std": std[keep]})
    importances = importances.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    pdp = _partial_dependence(model, X, frame, list(importances["feature"][:max(int(top), 0)]),
                              grid_resolution, notes)
    report = Explanation(method, importances, pdp,
                         scoring if isinstance(scoring, str) or scoring is None else repr(scoring),
                         int(n_repeats) if method == "permutation" else 0,
                         int(len(frame)) if method == "permutation" else explained, notes=notes,
                         output=None if method == "permutation" else output)
    if log:
        _log(report)
    return report


SHAP_ROWS = 500  # rows a tree model's values are computed on (a sample beyond it)
AGNOSTIC_ROWS = 200  # the same for any other model: ~10x slower a row (60 against 5 ms)
SHAP_BACKGROUND = 100
EXACT_UP_TO = 10  # columns up to which model-agnostic SHAP values are exact


def _shap(model: Any, frame: Any, random_state: int | None, notes: list[str]) -> tuple[Any, Any, str, int]:
    """Mean and standard deviation of |SHAP value| per column, what they are in, and how
    many rows were explained.

    A classifier's SHAP values are on its predicted probability (of the positive class, or
    of each class averaged over the classes), a regressor's on its prediction: the label a
    classifier predicts moves in jumps of 0 or 1, which would make every value a fraction
    of a class flip. Tree models (scikit-learn's forests and trees, XGBoost, LightGBM) go
    through SHAP's tree explainer (exact, seconds); anything else, pipelines included,
    through SHAP's exact explainer (up to ``EXACT_UP_TO`` columns) or its permutation
    explainer (ten permutations a row) on the model's own predict function, which call the
    model on thousands of rows for each row explained: hence samples of ``SHAP_ROWS`` (tree
    models) or ``AGNOSTIC_ROWS`` rows, explained against ``SHAP_BACKGROUND`` background rows
    (a sample is said in the notes). Measured on 2 cores, 30 columns: a 50-tree forest 2.6 s
    for 500 rows; a scaler + logistic regression pipeline ~60 ms a row, plus ~11 s the first
    time in a process while SHAP's numba code compiles."""
    import numpy as np
    import pandas as pd
    import shap
    from sklearn.base import is_classifier

    seed = 0 if random_state is None else int(random_state)
    background = frame.sample(min(SHAP_BACKGROUND, len(frame)), random_state=seed)

    def sample(limit: int) -> Any:
        return frame if len(frame) <= limit else frame.sample(limit, random_state=seed)

    proba = is_classifier(model) and hasattr(model, "predict_proba")
    classes = list(getattr(model, "classes_", []))
    values = None
    if not hasattr(model, "steps"):  # a pipeline is never a tree model to SHAP
        rows = sample(SHAP_ROWS)
        try:
            explainer = shap.TreeExplainer(model, background,
                                           model_output="probability" if proba else "raw")
            values = np.asarray(explainer.shap_values(rows, check_additivity=False))
        except Exception:  # noqa: BLE001 - SHAP says "not a tree model" in several ways
            values = None
    if values is None:
        rows = sample(AGNOSTIC_ROWS)
        predict = model.predict_proba if proba else model.predict
        # SHAP masks numbers: a non-numeric column goes to it as codes and comes back to the
        # model as its values; a model fitted on a DataFrame gets a DataFrame.
        named = hasattr(model, "feature_names_in_") or not hasattr(model, "n_features_in_")
        codes = {c: pd.Index(pd.unique(frame[c].dropna())) for c, t in frame.dtypes.items()
                 if t.kind not in "biuf"}

        def encode(part: Any) -> Any:
            out = part.copy()
            for c, cats in codes.items():
                out[c] = cats.get_indexer(part[c]).astype(float)  # -1: missing
            return out.to_numpy(dtype=float)

        def f(data: Any) -> Any:
            data = np.asarray(data, dtype=float)
            if not named:
                return predict(data)
            batch = pd.DataFrame(data, columns=frame.columns)
            for c, cats in codes.items():
                code = batch[c].to_numpy().astype(int)
                batch[c] = pd.Series(np.where(code < 0, None, cats.take(code.clip(0)).to_numpy(dtype=object)),
                                     index=batch.index).astype(frame[c].dtype)
            return predict(batch)

        masker = shap.maskers.Independent(encode(background), max_samples=len(background))
        width = frame.shape[1]
        if width <= EXACT_UP_TO:  # every coalition: 2**width evaluations a row, exact values
            explainer = shap.explainers.Exact(f, masker)
            values = np.asarray(explainer(encode(rows), silent=True).values)
        else:  # ten antithetic permutations a row
            explainer = shap.PermutationExplainer(f, masker, seed=seed)
            values = np.asarray(explainer(encode(rows), max_evals=10 * (2 * width + 1), silent=True).values)
    if len(rows) < len(frame):
        notes.append(f"SHAP values on {len(rows):,} rows sampled from {len(frame):,}, "
                     f"against {len(background):,} background rows.")
    if values.ndim == 3 and values.shape[0] == len(rows) and values.shape[1] == frame.shape[1]:
        per_class = values  # rows x features x classes
    elif values.ndim == 3:
        per_class = np.moveaxis(values, 0, -1)  # classes x rows x features (older SHAP)
    else:
        per_class = values[..., None]
    if proba and per_class.shape[-1] == 2:
        absolute = np.abs(per_class[..., 1])
        output = f"P(class={classes[1]!s})" if len(classes) == 2 else "P(positive class)"
    elif proba:
        absolute = np.abs(per_class).mean(axis=2)
        output = f"the probability of each of {per_class.shape[-1]} classes, averaged over the classes"
    else:
        absolute = np.abs(per_class[..., 0])
        output = "the prediction"
    return absolute.mean(axis=0), absolute.std(axis=0), output, int(len(rows))


def _partial_dependence(model: Any, X: Any, frame: Any, features: list[str], grid: int,
                        notes: list[str]) -> dict[str, dict[str, list[float]]]:
    import numpy as np
    import pandas as pd

    from sklearn.inspection import partial_dependence

    out: dict[str, dict[str, list[float]]] = {}
    data = X if isinstance(X, pd.DataFrame) else np.asarray(X)
    for f in features:
        if frame[f].dtype.kind not in "iuf":
            notes.append(f"No partial dependence for {f!r}: it is not numeric.")
            continue
        target = f if isinstance(X, pd.DataFrame) else list(frame.columns).index(f)
        try:
            result = partial_dependence(model, data, [target], kind="average", grid_resolution=grid)
        except (ValueError, TypeError) as exc:
            notes.append(f"No partial dependence for {f!r}: {exc}")
            continue
        average = np.asarray(result["average"])
        average = average[-1] if average.ndim > 1 and average.shape[0] > 1 else average.reshape(-1, average.shape[-1])[0]
        grid_values = result["grid_values"][0] if "grid_values" in result else result["values"][0]
        out[f] = {"values": [float(v) for v in grid_values], "average": [float(v) for v in average]}
    return out


def _log(report: Explanation) -> None:
    from ..tracking import active_run

    run = active_run()
    if run is None:
        return
    report.run_id = run.id
    run.log_text(json.dumps(report.to_dict(), indent=1), ARTIFACT)


def report_html(doc: dict[str, Any]) -> str:
    """An explanation (its ``to_dict()``) as an HTML table that reads without a kernel."""
    cell = "padding:2px 8px;text-align:right;border-bottom:1px solid var(--jp-border-color2,#ddd)"
    what = ("mean drop in score when shuffled" if doc["method"] == "permutation"
            else "mean |SHAP value|" + (f" on {doc['output']}" if doc.get("output") else ""))
    rows = "".join(f"<tr><td style='{cell};text-align:left'>{html.escape(str(r['feature']))}</td>"
                   f"<td style='{cell}'>{_fmt(r['importance'])}</td><td style='{cell}'>± {_fmt(r['std'])}</td></tr>"
                   for r in doc["importances"][:15])
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in doc.get("notes") or [])
    return (f"<div class='cellops-explanation' style='color:var(--jp-ui-font-color1,#222)'>"
            f"<b>Feature importance</b> ({html.escape(doc['method'])}: {what}"
            + (f", {doc['n_repeats']} repeats" if doc.get("n_repeats") else "") + f", {doc['rows']:,} rows)"
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr><th style='{cell};text-align:left'>feature</th>"
            f"<th style='{cell}'>importance</th><th style='{cell}'>std</th></tr></thead><tbody>{rows}</tbody></table>"
            f"{notes}</div>")
