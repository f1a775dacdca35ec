"""scikit-learn capture: estimators a block of code fitted, logged to a run.

:func:`snapshot` records, for every estimator in a namespace, a token of its fitted
state (the identities of its fitted ``attr_`` values and those of nested
estimators). After the code ran, :func:`fitted_since` returns the estimators that
are new and fitted, or whose token changed (re-fitted). :func:`log_estimators` logs
their params, saves each fitted model with skops (never pickle) and records its
input signature.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Mapping

from .values import param_text

if TYPE_CHECKING:
    from .run import Run

__all__ = ["DEFAULT_PARAMS_TAG", "default_params", "estimator_params", "fitted_since", "log_estimators",
           "signature", "snapshot"]

Token = frozenset


def _is_estimator(obj: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    if base is None or isinstance(obj, type):
        return False
    return isinstance(obj, base.BaseEstimator)


def _fitted_token(est: Any) -> Token:
    items = []
    stack, seen = [est], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for k, v in vars(obj).items():
            if k.endswith("_") and not k.startswith("_"):
                items.append((id(obj), k, id(v)))
        try:
            nested = obj.get_params(deep=False).values()
        except Exception:  # noqa: BLE001 - odd third-party estimators
            nested = []
        stack.extend(v for v in nested if _is_estimator(v))
        for step in getattr(obj, "steps", None) or []:  # Pipeline
            if isinstance(step, tuple) and len(step) == 2 and _is_estimator(step[1]):
                stack.append(step[1])
    return frozenset(items)


def snapshot(namespace: Mapping[str, Any]) -> dict[str, tuple[int, Token]]:
    if "sklearn" not in sys.modules:
        return {}
    return {name: (id(obj), _fitted_token(obj)) for name, obj in list(namespace.items())
            if not name.startswith("_") and _is_estimator(obj)}


def fitted_since(before: Mapping[str, tuple[int, Token]], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Estimators in ``namespace`` fitted (or re-fitted) since ``before`` was taken."""
    out = {}
    for name, (ident, token) in snapshot(namespace).items():
        if not token:  # not fitted
            continue
        old = before.get(name)
        if old is None or old[0] != ident or old[1] != token:
            out[name] = namespace[name]
    return out


def signature(est: Any, namespace: Mapping[str, Any]) -> dict[str, Any] | None:
    """Input columns (and dtypes, from a matching DataFrame in the namespace)."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        steps = getattr(est, "steps", None)
        if steps:
            names = getattr(steps[0][1], "feature_names_in_", None)
    n = getattr(est, "n_features_in_", None)
    if names is None:
        return {"inputs": None, "n_features": int(n)} if n is not None else None
    names = [str(c) for c in names]
    dtypes: dict[str, str] = {}
    pd = sys.modules.get("pandas")
    if pd is not None:
        for obj in list(namespace.values()):
            if isinstance(obj, pd.DataFrame) and list(map(str, obj.columns)) == names:
                dtypes = {str(c): str(t) for c, t in obj.dtypes.items()}
                break
    return {"inputs": [{"name": c, "dtype": dtypes.get(c)} for c in names],
            "n_features": len(names)}


def estimator_params(est: Any) -> dict[str, str]:
    out = {}
    for key, value in est.get_params(deep=True).items():
        if _is_estimator(value) or callable(value) and not isinstance(value, type):
            continue
        if isinstance(value, (list, tuple)) and any(
                isinstance(v, tuple) and len(v) == 2 and _is_estimator(v[1]) for v in value):
            continue  # Pipeline.steps: the steps' own params are logged instead
        out[key] = param_text(value)
    return out


DEFAULT_PARAMS_TAG = "cellops.default_params"


def default_params(est: Any) -> list[str]:
    """The keys of ``estimator_params(est)`` still at the value the estimator's class
    gives them (``max_iter=100`` on a LogisticRegression nobody told otherwise): the
    front ends show the params the user set first and fold these away."""
    import inspect

    params = est.get_params(deep=True)
    defaults: list[str] = []
    for key in estimator_params(est):
        owner_key, _, leaf = key.rpartition("__")
        owner = params.get(owner_key) if owner_key else est
        try:  # scikit-learn estimators declare every param's default in __init__
            default = inspect.signature(type(owner).__init__).parameters[leaf].default
        except (KeyError, TypeError, ValueError):
            continue
        if default is not inspect.Parameter.empty and \
                param_text(default) == param_text(owner.get_params(deep=False)[leaf]):
            defaults.append(key)
    return defaults


def log_estimators(run: Run, estimators: Mapping[str, Any], namespace: Mapping[str, Any]) -> list[str]:
    """Log params, a skops model file and a signature for each estimator; return notes."""
    notes = []
    prefix = len(estimators) > 1
    for var, est in estimators.items():
        params = {(f"{var}.{k}" if prefix else k): v for k, v in estimator_params(est).items()}
        stored = run.params
        fresh = {k: v for k, v in params.items() if k not in stored or stored[k] == v}
        clashes = sorted(set(params) - set(fresh))
        run.log_params(fresh)
        run.set_tag(f"estimator.{var}", f"{type(est).__module__}.{type(est).__qualname__}")
        defaults = {(f"{var}.{k}" if prefix else k) for k in default_params(est)} & set(fresh)
        if defaults:
            known = set(filter(None, run.tags.get(DEFAULT_PARAMS_TAG, "").split(",")))
            run.set_tag(DEFAULT_PARAMS_TAG, ",".join(sorted(known | defaults)))
        if clashes:
            notes.append(f"{var}: params {', '.join(clashes)} already logged with other values; kept")
        try:
            from ..skops_io import dump_skops

            run.log_artifact(dump_skops(est), f"models/{var}.skops")
        except Exception as exc:  # noqa: BLE001 - a model skops cannot save must not fail the cell
            notes.append(f"{var}: not saved ({type(exc).__name__}: {exc})")
            continue
        sig = signature(est, namespace)  # dtypes from a matching DataFrame in the cell's namespace
        if sig is not None:
            run.log_artifact(json.dumps(sig, indent=2).encode(), f"models/{var}.signature.json")
    return notes
