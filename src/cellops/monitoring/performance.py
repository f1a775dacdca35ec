"""Model performance on a window: realised, once labels are logged, and estimated before.

:func:`performance` computes the usual metrics from labels and predictions — accuracy,
precision, recall, F1 and ROC AUC for classifiers; MAE, RMSE and R2 for regressors.

:class:`CBPE` estimates a binary classifier's metrics *without* labels, by NannyML's
confidence-based performance estimation: calibrate the model's probabilities on a labelled
reference (isotonic regression, kept only when it lowers the calibration error), then read
each row's calibrated probability as the chance its prediction is right and sum the
expected confusion matrix. Its assumptions (docs/monitoring.md): the model's scores still
rank rows the way they did on the reference, and P(y | x) has not changed — the shift is in
the inputs only (covariate shift). The uncertainty of an estimate is its sampling error:
the spread of the realised metric over reference samples of the window's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["CBPE", "Estimate", "performance", "CLASSIFIER_METRICS", "REGRESSOR_METRICS"]

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSOR_METRICS = ("mae", "rmse", "r2")


def _task(y_true: np.ndarray, task: str) -> str:
    if task in ("classification", "regression"):
        return task
    if task != "auto":
        raise InvalidArgumentError(f"task must be 'auto', 'classification' or 'regression', "
                                   f"not {task!r}.")
    if y_true.dtype.kind == "f" and np.unique(y_true[:5000]).size > 20:
        return "regression"
    if y_true.dtype.kind in "fc" and not np.all(np.mod(y_true, 1) == 0):
        return "regression"
    return "classification"


def performance(y_true: Sequence[Any], y_pred: Sequence[Any], *, y_proba: Any = None,
                task: str = "auto", positive: Any = None) -> dict[str, float]:
    """Realised metrics of ``y_pred`` against ``y_true`` (rows without a label are left out).

    Classification: accuracy, precision, recall, f1 (binary: of ``positive``, default the
    larger label; more classes: macro averages) and roc_auc when ``y_proba`` (the positive
    class's probability, or one column per class) is given. Regression: mae, rmse, r2.
    """
    from sklearn import metrics as m

    t = np.asarray(list(y_true) if not hasattr(y_true, "__array__") else y_true, dtype=object)
    p = np.asarray(list(y_pred) if not hasattr(y_pred, "__array__") else y_pred, dtype=object)
    if t.shape[0] != p.shape[0]:
        raise InvalidArgumentError(f"{t.shape[0]} labels but {p.shape[0]} predictions.")
    keep = np.array([v is not None and v == v for v in t], dtype=bool)
    if y_proba is not None:
        y_proba = np.asarray(y_proba, dtype=float)[keep]
    t, p = t[keep], p[keep]
    if t.size == 0:
        return {}
    try:
        t_num = t.astype(float)
        p_num = p.astype(float)
        numeric = True
    except (TypeError, ValueError):
        numeric = False
    kind = _task(t_num, task) if numeric else ("classification" if task == "auto" else task)
    out: dict[str, float] = {"rows": float(t.size)}
    if kind == "regression":
        if not numeric:
            raise InvalidArgumentError("Regression metrics need numeric labels and predictions.")
        out["mae"] = float(m.mean_absolute_error(t_num, p_num))
        out["rmse"] = float(math.sqrt(m.mean_squared_error(t_num, p_num)))
        out["r2"] = float(m.r2_score(t_num, p_num)) if t.size > 1 else float("nan")
        return out
    if numeric:
        t, p = t_num, p_num
    labels = sorted(set(t.tolist()) | set(p.tolist()), key=lambda v: (str(type(v)), v))
    binary = len(labels) <= 2
    out["accuracy"] = float(m.accuracy_score(t, p))
    if binary:
        pos = positive if positive is not None else labels[-1]
        kw: dict[str, Any] = {"pos_label": pos, "average": "binary", "zero_division": 0}
    else:
        kw = {"average": "macro", "zero_division": 0}
    out["precision"] = float(m.precision_score(t, p, **kw))
    out["recall"] = float(m.recall_score(t, p, **kw))
    out["f1"] = float(m.f1_score(t, p, **kw))
    if y_proba is not None and len(set(t.tolist())) > 1:
        try:
            if y_proba.ndim == 1 or y_proba.shape[1] == 1:
                pos = positive if positive is not None else labels[-1]
                out["roc_auc"] = float(m.roc_auc_score(t == pos, y_proba.ravel()))
            elif y_proba.shape[1] == 2:
                out["roc_auc"] = float(m.roc_auc_score(t == labels[-1], y_proba[:, 1]))
            else:
                out["roc_auc"] = float(m.roc_auc_score(t, y_proba, multi_class="ovr"))
        except ValueError:
            pass  # classes in the window that the probabilities do not cover
    return out


@dataclass
class Estimate:
    """An estimated metric: ``value`` ± ``sampling_error``; ``lower``/``upper`` are three
    sampling errors away (NannyML's confidence band)."""

    metric: str
    value: float
    sampling_error: float
    realized: float | None = None

    @property
    def lower(self) -> float:
        return self.value - 3 * self.sampling_error

    @property
    def upper(self) -> float:
        return self.value + 3 * self.sampling_error

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "sampling_error": self.sampling_error,
                "lower": self.lower, "upper": self.upper, "realized": self.realized}


def _ece(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins."""
    idx = np.minimum((proba * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(proba[sel].mean() - y[sel].mean())
    return total


_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # numpy 2 renamed it


def _expected(cal: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(cal * pred))
    fp = float(np.sum((1 - cal) * pred))
    fn = float(np.sum(cal * (1 - pred)))
    tn = float(np.sum((1 - cal) * (1 - pred)))
    n = tp + fp + fn + tn
    out = {"accuracy": (tp + tn) / n if n else float("nan"),
           "precision": tp / (tp + fp) if tp + fp else float("nan"),
           "recall": tp / (tp + fn) if tp + fn else float("nan"),
           "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}
    order = np.argsort(-cal, kind="stable")
    pos, neg = cal[order], 1 - cal[order]
    if pos.sum() > 0 and neg.sum() > 0:
        tpr = np.concatenate([[0.0], np.cumsum(pos) / pos.sum()])
        fpr = np.concatenate([[0.0], np.cumsum(neg) / neg.sum()])
        out["roc_auc"] = float(_trapezoid(tpr, fpr))
    else:
        out["roc_auc"] = float("nan")
    return out


def _realized(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    out = _expected(y.astype(float), pred)  # labels as certain probabilities: same formulas
    if 0 < y.sum() < y.size:
        from sklearn.metrics import roc_auc_score

        out["roc_auc"] = float(roc_auc_score(y, proba))
    return out


@dataclass
class CBPE:
    """Confidence-based performance estimation for a binary classifier.

    ``fit(reference_proba, reference_labels)`` on labelled reference data (the model's
    probability of the positive class, and 0/1 labels); ``estimate(proba)`` then gives an
    :class:`Estimate` per metric for any window of unlabelled rows. ``threshold`` turns
    probabilities into predicted classes, as the model does (0.5 for scikit-learn).
    """

    threshold: float = 0.5
    metrics: tuple[str, ...] = CLASSIFIER_METRICS
    samples: int = 60
    calibrated: bool = False
    _calibrator: Any = None
    _ref_proba: Any = None
    _ref_y: Any = None
    _errors: dict[int, dict[str, float]] = field(default_factory=dict)

    def fit(self, proba: Any, y: Any) -> CBPE:
        from sklearn.isotonic import IsotonicRegression

        proba = np.asarray(proba, dtype=float).ravel()
        y = np.asarray(y).ravel()
        if proba.shape != y.shape or proba.size < 20:
            raise InvalidArgumentError(
                f"CBPE needs at least 20 labelled reference rows with a probability each; got "
                f"{proba.size} probabilities and {y.size} labels.")
        values = set(np.unique(y).tolist())
        if not values <= {0, 1, True, False, 0.0, 1.0} or len(values) < 2:
            raise InvalidArgumentError(
                f"CBPE estimates binary classifiers: the reference labels must be 0 and 1 (both "
                f"present); got {sorted(values, key=str)[:5]}.")
        if np.any((proba < 0) | (proba > 1)) or np.isnan(proba).any():
            raise InvalidArgumentError("CBPE needs probabilities in [0, 1] (predict_proba's "
                                       "positive column), without missing values.")
        y = y.astype(float)
        # Calibrate only when it helps: isotonic fitted on one half, judged on the other.
        half = np.arange(proba.size) % 2 == 0
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
        iso.fit(proba[half], y[half])
        if _ece(iso.predict(proba[~half]), y[~half]) < _ece(proba[~half], y[~half]):
            self._calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            self._calibrator.fit(proba, y)
            self.calibrated = True
        self._ref_proba, self._ref_y = proba, y
        self._errors.clear()
        return self

    def _calibrate(self, proba: np.ndarray) -> np.ndarray:
        return self._calibrator.predict(proba) if self._calibrator is not None else proba

    def sampling_errors(self, n: int) -> dict[str, float]:
        """The standard deviation of each realised metric over reference samples of ``n``."""
        if n not in self._errors:
            rng = np.random.default_rng(0)
            size = max(1, min(n, 50_000))
            runs: dict[str, list[float]] = {k: [] for k in self.metrics}
            for _ in range(self.samples):
                pick = rng.integers(0, self._ref_y.size, size)
                proba = self._ref_proba[pick]
                got = _realized(self._ref_y[pick], (proba >= self.threshold).astype(float), proba)
                for k in self.metrics:
                    if got.get(k) == got.get(k):
                        runs[k].append(got[k])
            scale = math.sqrt(size / n) if n > size else 1.0
            self._errors[n] = {k: float(np.std(v)) * scale if v else float("nan")
                               for k, v in runs.items()}
        return self._errors[n]

    def estimate(self, proba: Any, y: Any = None) -> dict[str, Estimate]:
        """Estimated metrics for the rows with these probabilities; with labels ``y``
        (0/1, None where unknown) the realised value is set beside each estimate."""
        if self._ref_y is None:
            raise InvalidArgumentError("Fit the CBPE on labelled reference data first.")
        proba = np.asarray(proba, dtype=float).ravel()
        if proba.size == 0:
            return {}
        pred = (proba >= self.threshold).astype(float)
        got = _expected(self._calibrate(proba), pred)
        errors = self.sampling_errors(proba.size)
        out = {k: Estimate(k, got[k], errors[k]) for k in self.metrics}
        if y is not None:
            y = np.asarray(y, dtype=object).ravel()
            known = np.array([v is not None and v == v for v in y], dtype=bool)
            if known.sum():
                real = _realized(y[known].astype(float), pred[known], proba[known])
                for k, e in out.items():
                    e.realized = real.get(k)
        return out
