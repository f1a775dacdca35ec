"""Data drift: does the current data still look like the reference?

:func:`drift` tests each column with the statistic Evidently would pick (see
:mod:`.stats` and docs/monitoring.md), and calls the dataset drifted when the share of
drifted columns reaches ``drift_share`` (0.5). Missing values and categories the reference
never had are reported beside the tests, not folded into them.

A column's kind is inferred from the reference the way Evidently infers it: floats are
numeric; integers are numeric unless they take at most 10 distinct values (then they are
categories); booleans, strings and pandas categoricals are categories; datetimes are left
out. ``categorical=[...]`` makes named columns categories.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .. import charts
from ..errors import InvalidArgumentError
from .stats import CATEGORICAL, NUMERIC, Column, auto_test, get_drift_test

__all__ = ["DriftReport", "drift", "as_frame"]

# Columns of cellops.predictions() that describe the request, not the model's input.
LOG_COLUMNS = ("request_id", "row", "time", "model", "version", "source", "status",
               "latency_ms", "error", "label", "labeled_at")
INT_CATEGORY_LIMIT = 10  # Evidently's: integers with at most this many values are categories
MAX_NEW_SHOWN = 20
SMALL_SAMPLE = 1000  # below it, distance tests read sampling noise as drift


@dataclass
class DriftReport:
    """The outcome of :func:`drift`.

    ``drifted``: the dataset drifted (share of drifted columns >= ``drift_share``);
    ``share``; ``columns``: a DataFrame with one row per column tested (column, type,
    test, statistic, value_kind — ``p_value`` or ``distance`` —, threshold, drifted,
    missing_reference, missing_current, new_categories, note).
    """

    drifted: bool
    share: float
    drift_share: float
    columns: Any
    reference_rows: int
    current_rows: int
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not tested
    notes: list[str] = field(default_factory=list)
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, d in zip(self.columns["column"], self.columns["drifted"]) if d]

    def to_dict(self) -> dict[str, Any]:
        """Everything in plain JSON types (NaN as None)."""
        rows = []
        for rec in self.columns.to_dict("records"):
            rows.append({k: (None if isinstance(v, float) and math.isnan(v) else
                             (v.item() if hasattr(v, "item") else v)) for k, v in rec.items()})
        return {"drifted": bool(self.drifted), "share": self.share,
                "drift_share": self.drift_share, "n_columns": len(rows),
                "n_drifted": sum(bool(r["drifted"]) for r in rows),
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "columns": rows, "skipped": self.skipped, "notes": self.notes,
                "run_id": self.run_id}

    def __repr__(self) -> str:
        n = len(self.columns)
        return (f"<DriftReport {'DRIFT' if self.drifted else 'no drift'}: "
                f"{len(self.drifted_columns)}/{n} columns drifted (share {self.share:.2f}, "
                f"threshold {self.drift_share})>")

    def _repr_html_(self) -> str:
        return _report_html(self)

    def _ipython_display_(self) -> None:
        self.notebook_view()._ipython_display_()

    def notebook_view(self) -> charts.Report:
        """What a notebook shows: the table, then the distributions as one interactive
        chart (a plotly figure with an SVG copy for viewers without plotly)."""
        shown = list(self.distributions.items())[:12]
        figure = charts.bar_figure({name: (d["labels"], {"reference": d["reference"],
                                                         "current": d["current"]},
                                           d.get("edges"))
                                    for name, d in shown})
        return charts.Report([_report_html(self, plots=False),
                              charts.Chart(figure, _plots_html(shown), "distributions")
                              if shown else ""])

    def save_html(self, path: str | Path) -> Path:
        """Write the report as a standalone HTML page; returns its path."""
        path = Path(path)
        path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Drift report"
                        "</title></head><body style='font-family:sans-serif;margin:16px'>"
                        + _report_html(self) + "</body></html>", encoding="utf-8")
        return path


# -- inputs ---------------------------------------------------------------------------------
def as_frame(data: Any, what: str) -> tuple[Any, list[str]]:
    """``data`` as a DataFrame: a DataFrame, a logged :class:`~cellops.Dataset` (or its
    name), or a prediction-log frame; with notes on how it was obtained."""
    import pandas as pd

    from ..datasets import Dataset

    notes: list[str] = []
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, (Dataset, str)):
        frame, notes = _dataset_frame(data, what)
    elif isinstance(data, pd.Series):
        frame = data.to_frame()
    else:
        raise InvalidArgumentError(
            f"{what} must be a DataFrame, a Dataset logged with log_dataset (or its name), or "
            f"cellops.predictions(...); got {type(data).__name__}.")
    if "request_id" in frame.columns and "prediction" in frame.columns:  # a prediction log
        frame = frame.drop(columns=[c for c in LOG_COLUMNS if c in frame.columns])
    return frame, notes


def _dataset_frame(data: Any, what: str) -> tuple[Any, list[str]]:
    from ..datasets import Dataset, describe, read_table_file
    from ..workspaces import workspace

    if isinstance(data, str):
        row = workspace().store.monitors.dataset(data)
        if row is None:
            raise InvalidArgumentError(
                f"{what}: no dataset named {data!r} was logged in this workspace. Log it with "
                "cellops.log_dataset(frame, name=...) or pass the DataFrame itself.")
        data = Dataset.from_row(row)
    if data.source and data.format and Path(data.source).is_file():
        path = Path(data.source)
        if describe(path)["fingerprint"] == data.fingerprint:
            return read_table_file(path, data.format), [f"{what}: read from {path}"]
    return _from_profile(data, what), [
        f"{what}: rebuilt from the profile of dataset {data.name!r} ({data.digest}: its data is "
        "not on disk unchanged), so its statistics are approximate"]


def _from_profile(ds: Any, what: str) -> Any:
    import pandas as pd

    columns = (ds.profile or {}).get("columns") or {}
    if not columns:
        raise InvalidArgumentError(
            f"{what}: dataset {ds.name!r} has no column profile to compare with (its file is "
            "gone or was not a table). Pass the data itself.")
    n = int(ds.num_rows or 0)
    out: dict[str, Any] = {}
    for name, prof in columns.items():
        count = int(prof.get("count", 0))
        if prof.get("kind") == "numeric" and prof.get("percentiles"):
            q = np.linspace(0, 100, count) if count else np.array([])
            values = np.interp(q, np.arange(101), prof["percentiles"])
        elif prof.get("kind") == "categorical":
            values = np.repeat(np.array(list(prof.get("top", {})), dtype=object),
                               list(prof.get("top", {}).values()))
            values = np.concatenate([values, np.full(prof.get("other", 0), "(other)", dtype=object)])
        else:
            continue
        col = np.full(n, np.nan if prof.get("kind") == "numeric" else None, dtype=values.dtype)
        col[:len(values)] = values[:n]
        out[name] = col
    return pd.DataFrame(out)


def column_kind(series: Any, categorical: set[str]) -> str | None:
    import pandas as pd

    name = str(series.name)
    if name in categorical:
        return CATEGORICAL
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL
    if pd.api.types.is_float_dtype(dtype):
        return NUMERIC
    if pd.api.types.is_integer_dtype(dtype):
        head = series.iloc[:2048]
        if head.nunique() > INT_CATEGORY_LIMIT or series.nunique() > INT_CATEGORY_LIMIT:
            return NUMERIC
        return CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return None
    return CATEGORICAL


def _column(series: Any, kind: str, what: str) -> Column:
    import pandas as pd

    if kind == NUMERIC:
        if not (pd.api.types.is_numeric_dtype(series.dtype)
                and not pd.api.types.is_bool_dtype(series.dtype)):
            raise InvalidArgumentError(
                f"Column {series.name!r} is numeric in the reference but {series.dtype} in the "
                f"{what}. Fix its type, or name it in categorical=[...] to compare it as "
                "categories.")
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
        return Column(values, NUMERIC)
    values = series.dropna().reset_index(drop=True)
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    return Column(values, CATEGORICAL)  # a Series: its value_counts is fast for every dtype


def _common_scale(ref: Column, cur: Column) -> int:
    """Bring numbers near the float limit (1e308) into range, both samples by one power of
    two, and return its exponent (0: untouched): every test here is blind to a common
    scale, but spreads, squares and bin widths of such values overflow to infinity."""
    peak = max((float(np.max(np.abs(c.values))) for c in (ref, cur) if len(c)), default=0.0)
    if peak <= 1e150:
        return 0
    exponent = int(np.ceil(np.log2(peak)))
    ref.values = np.ldexp(ref.values, -exponent)
    cur.values = np.ldexp(cur.values, -exponent)
    return exponent


def _option(value: Any, column: str, default: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(column, value.get("*", default))
    return default if value is None else value


# -- drift ----------------------------------------------------------------------------------
def drift(reference: Any, current: Any, *, columns: Iterable[str] | None = None,
          categorical: Iterable[str] | None = None, method: str | Mapping[str, str] = "auto",
          threshold: float | Mapping[str, float] | None = None, drift_share: float = 0.5,
          log: bool | str = False) -> DriftReport:
    """Test each column of ``current`` for drift from ``reference``.

    ``reference`` / ``current``: DataFrames, datasets logged with ``log_dataset`` (or their
    names), or frames from :func:`cellops.predictions` (their request columns are left
    out). ``columns``: which to test (default: those both have). ``method``: ``"auto"``
    (Evidently's choice per column), a test name (``ks``, ``chisquare``, ``z``,
    ``wasserstein``, ``jensenshannon``, ``psi``, ``kl_div``, ``hellinger``, ``anderson``,
    ``cramer_von_mises``), or a dict of column -> name (``"*"`` for the rest); ``threshold``
    likewise (default: the test's own). ``log=True`` (or a run name) records the report as
    a run of kind ``monitor``: drift metrics and the HTML report as an artifact.
    """
    ref, ref_notes = as_frame(reference, "reference")
    cur, cur_notes = as_frame(current, "current")
    if not isinstance(drift_share, (int, float)) or isinstance(drift_share, bool) \
            or not 0 < drift_share <= 1:
        raise InvalidArgumentError(f"drift_share must be a number in (0, 1], not {drift_share!r}.")
    if len(ref) == 0:
        raise InvalidArgumentError("The reference has no rows; drift needs data to compare with.")
    if len(cur) == 0:
        raise InvalidArgumentError("The current data has no rows: nothing to test (an empty "
                                   "window?). Widen the window or wait for predictions.")
    ref_cols = [str(c) for c in ref.columns]
    cur_cols = [str(c) for c in cur.columns]
    for side, have in (("reference", ref_cols), ("current data", cur_cols)):
        twice = sorted({c for c in have if have.count(c) > 1}) if len(set(have)) < len(have) else []
        if twice:
            raise InvalidArgumentError(
                f"The {side} has column name(s) {', '.join(map(repr, twice[:8]))} more than once; "
                "each column is tested by its name, so rename or drop the copies "
                "(frame.loc[:, ~frame.columns.duplicated()]).")
    skipped: dict[str, str] = {}
    if columns is None:
        names = [c for c in ref_cols if c in set(cur_cols)]
        for c in ref_cols:
            if c not in set(cur_cols):
                skipped[c] = "not in the current data"
        for c in cur_cols:
            if c not in set(ref_cols):
                skipped[c] = "not in the reference"
        if not names:
            raise InvalidArgumentError(
                f"The reference and the current data share no column (reference: "
                f"{', '.join(ref_cols[:8]) or 'none'}; current: {', '.join(cur_cols[:8]) or 'none'}). "
                "Compare data with the same schema.")
    else:
        names = [columns] if isinstance(columns, str) else [str(c) for c in columns]
        for side, have in (("reference", ref_cols), ("current data", cur_cols)):
            missing = [c for c in names if c not in set(have)]
            if missing:
                raise InvalidArgumentError(
                    f"Column(s) {', '.join(map(repr, missing))} are not in the {side}; it has "
                    f"{', '.join(have[:12])}.")
    cats = set(categorical or ())
    unknown = cats - set(names)
    if unknown:
        raise InvalidArgumentError(f"categorical names column(s) not tested: "
                                   f"{', '.join(sorted(unknown))}.")
    if isinstance(method, Mapping):
        for name in method:
            if name != "*" and name not in names:
                raise InvalidArgumentError(f"method names column {name!r}, which is not tested.")
    rows: list[dict[str, Any]] = []
    distributions: dict[str, dict[str, Any]] = {}
    for name in names:
        kind = column_kind(ref[name], cats)
        if kind is None:
            skipped[name] = f"{ref[name].dtype} columns are not tested for drift"
            continue
        rc = _column(ref[name], kind, "reference")
        cc = _column(cur[name], kind, "current data")
        scaled = _common_scale(rc, cc) if kind == NUMERIC else 0
        entry: dict[str, Any] = {
            "column": name, "type": kind, "test": None, "statistic": float("nan"),
            "value_kind": None, "threshold": float("nan"), "drifted": False,
            "missing_reference": 1 - len(rc) / len(ref), "missing_current": 1 - len(cc) / len(cur),
            "new_categories": [], "note": ""}
        if kind == CATEGORICAL and len(cc) and len(rc):
            new = cc.counts().index.difference(rc.counts().index)
            entry["new_categories"] = [_plain(v) for v in list(new[:MAX_NEW_SHOWN])]
        if not len(rc) or not len(cc):
            entry["note"] = f"no values in the {'reference' if not len(rc) else 'current data'}"
            rows.append(entry)
            continue
        chosen = _option(method, name, "auto")
        test = auto_test(rc, cc) if chosen == "auto" else get_drift_test(chosen)
        if kind not in test.kinds:
            raise InvalidArgumentError(
                f"The {test.name} test is for {' and '.join(test.kinds)} columns; {name!r} is "
                f"{kind}. Pick another method for it, e.g. method={{{name!r}: 'psi'}}.")
        limit = _option(threshold, name, test.threshold)
        if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit != limit:
            raise InvalidArgumentError(f"threshold for {name!r} must be a number, not {limit!r}.")
        try:
            value = test.run(rc, cc, float(limit))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"Column {name!r}: {exc}") from None
        entry.update(test=test.name, statistic=value,
                     value_kind="p_value" if test.p_value else "distance",
                     threshold=float(limit), drifted=test.drifted(value, float(limit)))
        rows.append(entry)
        if entry["drifted"]:
            distributions[name] = _distribution(rc, cc, scaled=scaled)
    import pandas as pd

    table = pd.DataFrame(rows, columns=["column", "type", "test", "statistic", "value_kind",
                                        "threshold", "drifted", "missing_reference",
                                        "missing_current", "new_categories", "note"])
    tested = [r for r in rows if r["test"] is not None]
    share = sum(r["drifted"] for r in tested) / len(tested) if tested else 0.0
    distances = sorted({r["test"] for r in tested if r["value_kind"] == "distance"})
    small = [] if not distances or min(len(ref), len(cur)) >= SMALL_SAMPLE else [
        f"{', '.join(distances)}: a distance on fewer than {SMALL_SAMPLE:,} rows a side exceeds "
        "its threshold by chance (noise reads as drift); for small samples use a p-value test: "
        "method='ks' for numbers, 'chisquare' for categories"]
    report = DriftReport(bool(tested) and share >= drift_share, share, float(drift_share), table,
                         len(ref), len(cur), skipped, ref_notes + cur_notes + small, distributions)
    if log:
        report.run_id = _log(report, log if isinstance(log, str) else "drift")
    return report


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else (v if isinstance(v, (int, float, str)) else str(v))


def _distribution(ref: Column, cur: Column, bins: int = 20, scaled: int = 0) -> dict[str, Any]:
    """Shares per bin (numbers) or per category (the 12 most common), for the plot; bin
    edges in the data's own unit (``scaled``: the exponent :func:`_common_scale` took off)."""
    if ref.kind == NUMERIC and (ref.distinct_at_most(12) is None):
        lo = float(min(ref.values.min(), cur.values.min()))
        hi = float(max(ref.values.max(), cur.values.max()))
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        r = np.histogram(ref.values, edges)[0] / len(ref)
        c = np.histogram(cur.values, edges)[0] / len(cur)
        edges_shown = np.ldexp(edges, scaled)
        labels = [f"{charts.tick_label(a)}" for a in edges_shown[:-1]]
        return {"labels": labels, "reference": r.tolist(), "current": c.tolist(),
                "edges": edges_shown.tolist()}
    rc, cc = ref.counts(), cur.counts()
    keys = list((rc / len(ref)).add(cc / len(cur), fill_value=0).sort_values(ascending=False)
                .index[:12])
    return {"labels": category_labels(keys),
            "reference": [float(rc.get(k, 0)) / len(ref) for k in keys],
            "current": [float(cc.get(k, 0)) / len(cur) for k in keys]}


def category_labels(keys: Iterable[Any]) -> list[str]:
    """The categories of a column as a chart labels them: numbers to four significant
    digits (-0.04464, not -0.044641636506989144), more where two would read the same."""
    keys = list(keys)
    for digits in (4, 6, 17):
        labels = [f"{k:.{digits}g}" if isinstance(k, float) or (
            hasattr(k, "dtype") and getattr(k.dtype, "kind", "") == "f") else str(k)
            for k in keys]
        if len(set(labels)) == len(set(map(str, keys))):
            return labels
    return [str(k) for k in keys]


def _log(report: DriftReport, name: str) -> str:
    from ..tracking.api import start_run

    run = start_run(name, kind="monitor", activate=False)
    try:
        run.log_params({"drift_share": report.drift_share, "reference_rows": report.reference_rows,
                        "current_rows": report.current_rows})
        metrics = {"drift_share": report.share, "drifted_columns": len(report.drifted_columns),
                   "dataset_drift": float(report.drifted)}
        for rec in report.columns.itertuples():
            if rec.test is not None and rec.statistic == rec.statistic:
                metrics[f"drift.{rec.column}"] = float(rec.statistic)
        run.log_metrics(metrics)
        run.log_text(_report_html(report), "drift_report.html")
        run.log_text(json.dumps(report.to_dict(), indent=2, default=str), "drift_report.json")
    finally:
        run.end()
    return run.id


# -- HTML -----------------------------------------------------------------------------------
def _plots_html(shown: list[tuple[str, dict[str, Any]]]) -> str:
    plots = "".join(charts.bars(f"{name}", dist["labels"], {"reference": dist["reference"],
                                                          "current": dist["current"]})
                    for name, dist in shown)
    return (f"<div style='display:flex;flex-wrap:wrap;gap:8px;margin-top:8px'>{plots}</div>"
            if plots else "")


def _report_html(report: DriftReport, plots: bool = True) -> str:
    from ..display import format_number

    # The theme's text on a tint of the status colour: readable in light and dark themes.
    ok = ("var(--jp-ui-font-color0, #111)",
          "color-mix(in srgb, var(--jp-success-color1, #388e3c) 18%, var(--jp-layout-color1, #fff))")
    bad = ("var(--jp-ui-font-color0, #111)",
           "color-mix(in srgb, var(--jp-error-color1, #d32f2f) 18%, var(--jp-layout-color1, #fff))")
    fg, bg = bad if report.drifted else ok
    n = len(report.columns)
    head = (f"<div style='margin:2px 0 8px'><span style='color:{fg};background:{bg};padding:1px 8px;"
            f"border-radius:8px;font-weight:600'>{'Dataset drift' if report.drifted else 'No dataset drift'}"
            f"</span> <b>{len(report.drifted_columns)}</b> of {n} column(s) drifted "
            f"(share {report.share:.2f}; drift at ≥ {report.drift_share:g}) · reference "
            f"{report.reference_rows:,} rows · current {report.current_rows:,} rows</div>")
    order = report.columns.sort_values(["drifted", "column"], ascending=[False, True])
    body = []
    for rec in order.itertuples():
        cfg, cbg = bad if rec.drifted else ok
        verdict = (f"<span style='color:{cfg};background:{cbg};padding:0 6px;border-radius:6px'>"
                   f"{'drift' if rec.drifted else 'ok'}</span>") if rec.test else rec.note
        # The value in the test's own terms, then the rule: "p = 0.43 (drift if p < 0.05)".
        what = "p" if rec.value_kind == "p_value" else "distance"
        rule = "&lt;" if rec.value_kind == "p_value" else "≥"
        stat = "" if rec.test is None else (
            f"{what} = {format_number(rec.statistic)} <span style='color:var(--jp-ui-font-color2,#616161)'>"
            f"(drift if {what} {rule} {format_number(rec.threshold)})</span>")
        missing = (f"{rec.missing_reference:.1%} → {rec.missing_current:.1%}"
                   if rec.missing_reference or rec.missing_current else "")
        new = ", ".join(html.escape(str(v)) for v in rec.new_categories[:5])
        if len(rec.new_categories) > 5:
            new += " …"
        body.append(f"<tr><td>{html.escape(rec.column)}</td><td>{rec.type}</td>"
                    f"<td>{rec.test or ''}</td><td>{stat}</td><td>{verdict}</td><td>{missing}</td>"
                    f"<td>{new}</td></tr>")
    cell = "padding:2px 8px;text-align:left;border-bottom:1px solid var(--jp-border-color2,#ddd)"
    table = ("<table style='border-collapse:collapse;font-size:12px'><thead><tr>"
             + "".join(f"<th style='{cell}'>{h}</th>" for h in
                       ("column", "type", "test", "statistic", "verdict", "missing ref → cur",
                        "new categories"))
             + "</tr></thead><tbody>" + "".join(body).replace("<td>", f"<td style='{cell}'>")
             + "</tbody></table>")
    shown = _plots_html(list(report.distributions.items())[:12]) if plots else ""
    notes = "".join(f"<div style='color:var(--jp-ui-font-color2,#777)'>{html.escape(n)}</div>"
                    for n in report.notes)
    skipped = ("<div style='color:var(--jp-ui-font-color2,#777)'>Not tested: "
               + "; ".join(f"{html.escape(c)} ({html.escape(w)})" for c, w in report.skipped.items())
               + "</div>") if report.skipped else ""
    return (f"<div class='cellops-drift' style='color:var(--jp-ui-font-color1,#222)'>"
            f"<b>Drift report</b>{head}{table}"
            + shown + notes + skipped + "</div>")
