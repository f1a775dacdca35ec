"""A monitor's spec: what it watches, its windows, its checks, its alert and its action —
validated the same way from Python (:func:`~.monitors.create_monitor`) and from a
``monitors.yaml`` file (:func:`load_monitor_file`), whose errors name the file and line::

    monitors:
      - name: churn-drift
        model: churn@champion          # NAME@ALIAS or NAME: the model's logged predictions
        reference: churn-train         # a logged dataset's name, {file: PATH}, or omitted:
                                       # the dataset the model version was trained on
        target: churned                # the label column of the reference (for estimates)
        window: 1d                     # 30s, 15m, 6h, 1d, 1w ... or "10000 rows"
        grace: 30s                     # how long after a window ends it is evaluated
        checks:
          - drift                      # share of drifted columns >= 0.5 fails
          - {type: drift, columns: [income], method: psi}
          - {type: performance, metric: accuracy, min: 0.8}
          - {type: estimated_performance, metric: roc_auc, min: 0.75}
          - {type: missing, max: 0.05}
          - schema
          - {type: volume, min: 100}
        alert: {webhook: "https://hooks.example.com/ml", auto_resolve: false}
        action:
          retrain:
            pipeline: retrain/pipeline.yaml
            parameters: {train.data: "{window_data}"}
            alias: champion            # request promotion of the new version
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import InvalidArgumentError

TOP_KEYS = {"name", "model", "reference", "target", "window", "grace", "checks", "alert",
            "action", "categorical"}
CHECK_KEYS = {
    "drift": {"share", "columns", "method", "threshold"},
    "performance": {"metric", "min", "max"},
    "estimated_performance": {"metric", "min", "max", "threshold"},
    "missing": {"max", "columns"},
    "schema": set(),
    "volume": {"min", "max"},
    "fairness": {"sensitive", "metric", "min", "max"},
}
FAIRNESS = {"demographic_parity_difference", "demographic_parity_ratio",
            "equalized_odds_difference", "equalized_odds_ratio", "mae_difference", "mae_ratio"}
METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse", "r2"}
ESTIMATED = {"accuracy", "precision", "recall", "f1", "roc_auc"}
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


class MonitorSpecError(InvalidArgumentError):
    """A monitor spec is malformed; ``path`` and ``line`` locate it when it came from a file."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)


def parse_duration(text: Any, what: str) -> int:
    """``"30s"``, ``"15m"``, ``"6h"``, ``"1d"``, ``"1w"`` -> milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not m or float(m.group(1)) <= 0 and what != "grace":
        raise MonitorSpecError(f"{what} must be a duration such as '30s', '15m', '6h', '1d' or "
                               f"'1w', not {text!r}.")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_window(value: Any) -> dict[str, Any]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return {"kind": "rows", "rows": value, "text": f"{value} rows"}
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)\s*rows?", text)
    if m:
        if int(m.group(1)) < 1:
            raise MonitorSpecError("A window needs at least 1 row.")
        return {"kind": "rows", "rows": int(m.group(1)), "text": text}
    try:
        ms = parse_duration(text, "window")
    except MonitorSpecError:
        raise MonitorSpecError(f"window must be a duration ('1h', '1d') or a row count "
                               f"('10000 rows'), not {value!r}.") from None
    return {"kind": "time", "ms": ms, "text": text}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise MonitorSpecError(f"{what} must be a number, not {value!r}.")
    return float(value)


def normalize_check(check: Any) -> dict[str, Any]:
    if isinstance(check, str):
        check = {"type": check}
    if not isinstance(check, Mapping):
        raise MonitorSpecError(f"A check is a name ({', '.join(CHECK_KEYS)}) or a mapping with a "
                               f"type, not {check!r}.")
    check = dict(check)
    kind = check.pop("type", None)
    if kind is None and len(check) == 1 and next(iter(check)) in CHECK_KEYS:
        kind, value = next(iter(check.items()))  # {performance: accuracy, min: ...} shorthand
        check = {"metric": value} if isinstance(value, str) else dict(value or {})
    name = check.pop("name", None)
    if kind not in CHECK_KEYS:
        raise MonitorSpecError(f"Unknown check type {kind!r}; types: {', '.join(CHECK_KEYS)}.")
    extra = set(check) - CHECK_KEYS[kind]
    if extra:
        raise MonitorSpecError(f"A {kind} check takes {', '.join(sorted(CHECK_KEYS[kind])) or 'no keys'}"
                               f"; not {', '.join(sorted(extra))}.")
    out: dict[str, Any] = {"type": kind}
    if kind == "drift":
        out["share"] = _number(check.get("share", 0.5), "drift share")
        if not 0 < out["share"] <= 1:
            raise MonitorSpecError("drift share must be in (0, 1].")
        if "columns" in check:
            cols = check["columns"]
            if isinstance(cols, str):
                cols = [cols]
            if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
                raise MonitorSpecError("drift columns must be a list of column names.")
            out["columns"] = cols
        for key in ("method", "threshold"):
            if key in check:
                out[key] = check[key]
        if "method" in out:
            from .stats import get_drift_test

            methods = out["method"] if isinstance(out["method"], Mapping) else {"*": out["method"]}
            for m in methods.values():
                if m != "auto":
                    get_drift_test(m)
    elif kind in ("performance", "estimated_performance"):
        metric = check.get("metric")
        allowed = METRICS if kind == "performance" else ESTIMATED
        if metric not in allowed:
            raise MonitorSpecError(f"A {kind} check needs metric: one of "
                                   f"{', '.join(sorted(allowed))}; got {metric!r}.")
        out["metric"] = metric
        if ("min" in check) == ("max" in check):
            raise MonitorSpecError(f"A {kind} check needs one bound: min (fails below it) or max "
                                   "(fails above it).")
        for key in ("min", "max"):
            if key in check:
                out[key] = _number(check[key], f"{kind} {key}")
        if "threshold" in check:
            out["threshold"] = _number(check["threshold"], "threshold")
    elif kind == "missing":
        out["max"] = _number(check.get("max", 0.05), "missing max")
        if "columns" in check:
            out["columns"] = list(check["columns"])
    elif kind == "fairness":
        sensitive = check.get("sensitive")
        if isinstance(sensitive, str):
            sensitive = [sensitive]
        if not isinstance(sensitive, list) or not sensitive or not all(isinstance(c, str) for c in sensitive):
            raise MonitorSpecError("A fairness check needs sensitive: the logged column (or columns) "
                                   "whose groups are compared, e.g. sensitive: sex.")
        out["sensitive"] = sensitive
        metric = check.get("metric", "demographic_parity_difference")
        if metric not in FAIRNESS:
            raise MonitorSpecError(f"A fairness check's metric is one of {', '.join(sorted(FAIRNESS))}; "
                                   f"got {metric!r}.")
        out["metric"] = metric
        if "min" in check or "max" in check:
            for key in ("min", "max"):
                if key in check:
                    out[key] = _number(check[key], f"fairness {key}")
        elif metric.endswith("_ratio"):
            out["min"] = 0.8  # the "four-fifths rule"
        else:
            out["max"] = 0.1
    elif kind == "volume":
        if "min" not in check and "max" not in check:
            raise MonitorSpecError("A volume check needs min or max: rows in a window.")
        for key in ("min", "max"):
            if key in check:
                out[key] = _number(check[key], f"volume {key}")
    out["name"] = str(name) if name else (
        f"fairness:{','.join(out['sensitive'])}" + (
            "" if out["metric"] == "demographic_parity_difference" else f":{out['metric']}")
        if kind == "fairness" else
        f"{kind}:{out['metric']}" if "metric" in out else
        f"drift:{','.join(out['columns'])}" if kind == "drift" and "columns" in out else kind)
    return out


def normalize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a spec (a mapping with :data:`TOP_KEYS`) and return it normalised."""
    extra = set(raw) - TOP_KEYS
    if extra:
        raise MonitorSpecError(f"Unknown key(s) {', '.join(sorted(extra))}; a monitor takes "
                               f"{', '.join(sorted(TOP_KEYS))}.")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise MonitorSpecError(f"A monitor needs a name of letters, digits, '_', '.' and '-', "
                               f"not {name!r}.")
    model = raw.get("model")
    if isinstance(model, str) and model.startswith("models:/"):
        model = model[len("models:/"):]
    if not isinstance(model, str) or not model.strip() or "/" in model:
        raise MonitorSpecError(f"model must be NAME@ALIAS or NAME (a registered model whose "
                               f"predictions are logged), not {model!r}.")
    spec: dict[str, Any] = {"name": name, "model": model.strip()}
    ref = raw.get("reference")
    if ref is not None and not isinstance(ref, (str, Mapping)):
        raise MonitorSpecError("reference must be a dataset name, {dataset: NAME}, {file: PATH}, "
                               "or left out (the model version's training dataset).")
    if isinstance(ref, Mapping):
        if len(ref) != 1 or next(iter(ref)) not in ("dataset", "file", "artifact"):
            raise MonitorSpecError("reference takes one of {dataset: NAME} or {file: PATH}.")
        ref = dict(ref)
    elif isinstance(ref, str):
        ref = {"dataset": ref}
    spec["reference"] = ref
    target = raw.get("target")
    if target is not None and not isinstance(target, str):
        raise MonitorSpecError(f"target is the label column's name, not {target!r}.")
    spec["target"] = target
    spec["window"] = parse_window(raw.get("window", "1d"))
    spec["grace_ms"] = parse_duration(raw.get("grace", "30s"), "grace") if \
        str(raw.get("grace", "30s")).strip() not in ("0", "0s") else 0
    checks = raw.get("checks", ["drift"])
    if isinstance(checks, (str, Mapping)):
        checks = [checks]
    if not isinstance(checks, list) or not checks:
        raise MonitorSpecError("checks must be a list with at least one check.")
    spec["checks"] = [normalize_check(c) for c in checks]
    names = [c["name"] for c in spec["checks"]]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise MonitorSpecError(f"Two checks are both named {', '.join(sorted(dupes))}; give one "
                               "a name: key.")
    if any(c["type"] == "estimated_performance" for c in spec["checks"]) and not target:
        raise MonitorSpecError("An estimated_performance check calibrates on the reference's "
                               "labels: set target: to the reference's label column.")
    cats = raw.get("categorical") or []
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise MonitorSpecError("categorical must be a list of column names.")
    spec["categorical"] = cats
    spec["alert"] = _alert(raw.get("alert"))
    spec["action"] = _action(raw.get("action"))
    return spec


def _alert(value: Any) -> dict[str, Any]:
    if value is None:
        return {"webhooks": [], "auto_resolve": False}
    if not isinstance(value, Mapping) or set(value) - {"webhook", "auto_resolve"}:
        raise MonitorSpecError("alert takes webhook: URL (or a list of URLs) and auto_resolve: "
                               "true/false.")
    hooks = value.get("webhook") or []
    hooks = [hooks] if isinstance(hooks, str) else list(hooks)
    for url in hooks:
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            raise MonitorSpecError(f"A webhook is an http:// or https:// URL, not {url!r}.")
    auto = value.get("auto_resolve", False)
    if not isinstance(auto, bool):
        raise MonitorSpecError("auto_resolve must be true or false.")
    return {"webhooks": hooks, "auto_resolve": auto}


def _action(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"retrain"} \
            or not isinstance(value["retrain"], Mapping):
        raise MonitorSpecError("action takes retrain: {pipeline: FILE, parameters: {...}, "
                               "step: NAME, register: MODEL, alias: ALIAS}.")
    r = dict(value["retrain"])
    extra = set(r) - {"pipeline", "parameters", "step", "register", "alias"}
    if extra:
        raise MonitorSpecError(f"retrain takes pipeline, parameters, step, register and alias; "
                               f"not {', '.join(sorted(extra))}.")
    if not isinstance(r.get("pipeline"), str):
        raise MonitorSpecError("retrain needs pipeline: the pipeline file to run.")
    params = r.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise MonitorSpecError("retrain parameters must be a mapping such as "
                               "{train.data: '{window_data}'}.")
    return {"retrain": {"pipeline": r["pipeline"], "parameters": dict(params),
                        "step": r.get("step"), "register": r.get("register"),
                        "alias": r.get("alias")}}


def model_name(model: str) -> tuple[str, str | None]:
    """A monitor's ``model`` (``NAME@ALIAS`` or ``NAME``) as (name, alias or None)."""
    name, _, alias = model.partition("@")
    return name, alias or None


def retrain_overrides(parameters: Mapping[str, Any],
                      context: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{"train.data": "{window_data}", "seed": 1}`` -> ``{"train": {"data": <filled>},
    "*": {"seed": 1}}``: the pipeline overrides of a retrain action, placeholders filled
    from ``context``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in parameters.items():
        step, _, name = key.rpartition(".")
        if isinstance(value, str):
            for placeholder, text in context.items():
                value = value.replace("{" + placeholder + "}", text)
        out.setdefault(step or "*", {})[name] = value
    return out


def _check_retrain(r: dict[str, Any]) -> None:
    """The retraining pipeline must take the parameters the monitor will give it: a typo
    is refused now, not at the first alert."""
    from ..pipelines.spec import load_pipeline

    if Path(r["pipeline"]).is_file():
        try:
            load_pipeline(r["pipeline"], retrain_overrides(r["parameters"], {}))
        except InvalidArgumentError as exc:
            raise MonitorSpecError(f"retrain: {exc}") from None


def load_monitor_file(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate every monitor in a ``monitors.yaml``; relative file paths in it
    (reference files, retraining pipelines) are made absolute against its folder."""
    from ..yamldoc import YamlError, load_yaml

    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MonitorSpecError("no such file", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MonitorSpecError(f"cannot read it as UTF-8 text ({exc})", str(path)) from None
    try:
        doc = load_yaml(text)
    except YamlError as exc:
        raise MonitorSpecError(exc.message, str(path), exc.line) from None
    data = doc.data
    if not isinstance(data, Mapping) or set(data) - {"monitors"} or \
            not isinstance(data.get("monitors"), list) or not data["monitors"]:
        raise MonitorSpecError("the file needs one key, monitors: a list of monitors",
                               str(path), doc.line(()))
    out = []
    for i, raw in enumerate(data["monitors"]):
        where = ("monitors", i)
        if not isinstance(raw, Mapping):
            raise MonitorSpecError("each monitor is a mapping with name, model, checks ...",
                                   str(path), doc.line(where))
        try:
            spec = normalize(raw)
        except MonitorSpecError as exc:
            key = _key_of(str(exc), raw)
            raise MonitorSpecError(str(exc), str(path),
                                   doc.line(where + ((key,) if key else ()))) from None
        ref = spec["reference"]
        if ref and "file" in ref:
            ref["file"] = str((path.parent / ref["file"]).absolute())
        if spec["action"]:
            r = spec["action"]["retrain"]
            r["pipeline"] = str((path.parent / r["pipeline"]).absolute())
            try:
                _check_retrain(r)
            except MonitorSpecError as exc:
                raise MonitorSpecError(str(exc), str(path), doc.line(where + ("action",))) \
                    from None
        out.append(spec)
    names = [s["name"] for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MonitorSpecError(f"monitor name(s) {', '.join(dupes)} given twice", str(path))
    return out


def _key_of(message: str, raw: Mapping[str, Any]) -> str | None:
    low = message.lower()
    for key in ("checks", "window", "grace", "alert", "action", "reference", "target", "model",
                "categorical", "name"):
        if key in raw and (key in low or (key == "checks" and "check" in low)
                           or (key == "alert" and "webhook" in low)
                           or (key == "action" and "retrain" in low)):
            return key
    return None
