"""``%compare``: params side by side with differences highlighted, metric histories
overlaid per metric (one line per run), parallel coordinates of the varying params against
a metric, and a diff of the runs' source. Charts are :class:`cellops.charts.Chart` s:
interactive plotly figures with an SVG copy for viewers without plotly."""

from __future__ import annotations

import difflib
import html
from typing import Sequence

import cellops
from cellops import charts
from cellops.display import format_number, same_value_key
from cellops.errors import InvalidArgumentError
from cellops.tracking.autolog import DEFAULT_PARAMS_TAG

# Highlights as tints of theme colours: readable under light and dark themes alike.
_DIFF = "background:color-mix(in srgb, var(--jp-warn-color1, #f57c00) 22%, transparent)"
_ADDED = "color-mix(in srgb, var(--jp-success-color1, #388e3c) 20%, transparent)"
_REMOVED = "color-mix(in srgb, var(--jp-error-color1, #d32f2f) 20%, transparent)"
_MISSING = ("<span class='missing' title='not logged in this run' style='color:"
            "var(--jp-ui-font-color3, #999);font-style:italic'>—</span>")
_TEXT = "color:var(--jp-content-font-color1, inherit)"


def _label(run: cellops.Run) -> str:
    return f"{run.name or 'run'} ({run.short_id})"


def _kv_table(title: str, runs: list[cellops.Run], values: list[dict], *,
              numbers: bool = False, fold_defaults: bool = False) -> str:
    """A row per key, a column per run. A row is highlighted when the runs that have the
    key disagree on it (by value: ``0``, ``0.0`` and ``False`` agree); a run without the key
    shows a dash, which is not a difference. With ``fold_defaults``, params an estimator
    left at its class default in every run that has them, and that agree, go under a
    "show all" fold. ``numbers`` right-aligns the values and their headers alike."""
    keys = sorted(set().union(*values))
    if not keys:
        return ""
    align = "text-align:right;font-variant-numeric:tabular-nums" if numbers else "text-align:left"
    head = "".join(f"<th style='{align}'>{html.escape(_label(r))}</th>" for r in runs)
    defaults = [set(filter(None, r.tags.get(DEFAULT_PARAMS_TAG, "").split(","))) for r in runs]
    shown, folded = [], []
    for k in keys:
        vals = [v.get(k) for v in values]
        present = {same_value_key(v) for v in vals if v is not None}
        differs = len(present) > 1
        cells = "".join(f"<td style='{align}'>"
                        f"{_MISSING if v is None else html.escape(format_number(v))}</td>"
                        for v in vals)
        row = (f"<tr style='{_DIFF if differs else ''}' class='{'differs' if differs else ''}'>"
               f"<td style='text-align:left'><b>{html.escape(k)}</b></td>{cells}</tr>")
        at_default = all(k not in v or k in d for v, d in zip(values, defaults))
        (folded if fold_defaults and not differs and at_default else shown).append(row)
    header = f"<tr><th></th>{head}</tr>"
    out = f"<h4>{title}</h4>"
    if shown:
        out += f"<table class='cellops-compare' style='{_TEXT}'>{header}{''.join(shown)}</table>"
    if folded:
        out += (f"<details class='cellops-defaults' style='{_TEXT}'><summary style='cursor:pointer;"
                f"color:var(--jp-ui-font-color2, #616161)'>Show all: {len(folded)} more left at "
                f"their defaults, the same in every run</summary><table class='cellops-compare'>"
                f"{header}{''.join(folded)}</table></details>")
    return out


# Pygments token kinds -> JupyterLab's editor colours (the notebook's own syntax colours).
_TOKEN_COLOURS = [
    ("Comment", "var(--jp-mirror-editor-comment-color, #408080)"),
    ("Literal.String", "var(--jp-mirror-editor-string-color, #ba2121)"),
    ("Literal.Number", "var(--jp-mirror-editor-number-color, #080)"),
    ("Keyword", "var(--jp-mirror-editor-keyword-color, #008000)"),
    ("Name.Builtin", "var(--jp-mirror-editor-builtin-color, #008000)"),
    ("Name.Function", "var(--jp-mirror-editor-def-color, #00f)"),
    ("Name.Class", "var(--jp-mirror-editor-def-color, #00f)"),
    ("Operator", "var(--jp-mirror-editor-operator-color, #7800c2)"),
]


def _highlight(code: str) -> str:
    """One line of Python as HTML spans coloured like JupyterLab's editor."""
    from pygments import lex
    from pygments.lexers import PythonLexer

    out = []
    for token, text in lex(code, PythonLexer()):
        text = text.rstrip("\n")
        colour = next((c for kind, c in _TOKEN_COLOURS if str(token).startswith("Token." + kind)),
                      None)
        out.append(f"<span style='color:{colour}'>{html.escape(text)}</span>" if colour
                   else html.escape(text))
    return "".join(out)


def _source_diff(runs: list[cellops.Run]) -> str:
    base = runs[0]
    parts = []
    for other in runs[1:]:
        a, b = (base.source or "").splitlines(), (other.source or "").splitlines()
        if a == b:
            continue
        lines = []
        for line in difflib.unified_diff(a, b, _label(base), _label(other), lineterm=""):
            if line.startswith(("+++", "---", "@@")):
                lines.append(f"<span style='color:var(--jp-ui-font-color2, #777)'>"
                             f"{html.escape(line)}</span>")
                continue
            mark, code = line[:1], line[1:]
            bg = {"+": _ADDED, "-": _REMOVED}.get(mark)
            style = f" style='background:{bg};display:inline-block;width:100%'" if bg else ""
            lines.append(f"<span{style}>{html.escape(mark or ' ')}{_highlight(code)}</span>")
        parts.append(f"<pre class='cellops-diff' style='{_TEXT}'>" + "\n".join(lines) + "</pre>")
    if not parts:
        return "<h4>Source</h4><p>Same source.</p>" if base.source else ""
    return "<h4>Source diff</h4>" + "".join(parts)


def _number(text: object) -> object:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return text


def _parallel(runs: list[cellops.Run], metric: str | None) -> list[str | charts.Chart]:
    """The sweep view: the params that vary, and the metric, as parallel axes."""
    keys = sorted(set().union(*(r.params for r in runs)))
    defaults = [set(filter(None, r.tags.get(DEFAULT_PARAMS_TAG, "").split(","))) for r in runs]

    def chosen(k: str) -> bool:  # someone set it: not every run that has it left it at its default
        return any(k in r.params and k not in d for r, d in zip(runs, defaults))

    varying = [k for k in keys if chosen(k)
               and len({same_value_key(r.params[k]) for r in runs if k in r.params}) > 1][:8]
    if metric is None:
        counts = {k: sum(k in r.metrics for r in runs) for r in runs for k in r.metrics}
        metric = max(sorted(counts), key=lambda k: counts[k]) if counts else None
    elif not any(metric in r.metrics for r in runs):
        raise InvalidArgumentError(f"None of the runs has a metric {metric!r}; they have "
                                   f"{', '.join(sorted({k for r in runs for k in r.metrics}))}.")
    if not varying or metric is None:
        return []
    axes: dict[str, list[object]] = {k: [_number(r.params.get(k)) if k in r.params else None
                                         for r in runs] for k in varying}
    values = [r.metrics.get(metric) for r in runs]
    axes[metric] = list(values)
    labels = [_label(r) for r in runs]
    title = f"{len(runs)} runs, coloured by {metric}"
    return [f"<h4>Params vs {html.escape(metric)}</h4>",
            charts.Chart(charts.parallel_figure(axes, values, labels, metric),
                         charts.parallel(title, axes, values, labels), title)]


def compare_report(run_ids: Sequence[str], metric: str | None = None) -> charts.Report:
    """The comparison of two or more runs, as the outputs ``%compare`` shows; with more
    than two, a parallel-coordinates chart of the params that vary against ``metric``
    (default: the metric most of the runs have)."""
    if len(run_ids) < 2:
        raise InvalidArgumentError("Compare needs at least two runs.")
    runs = [cellops.get_run(r) for r in cellops.resolve_runs(run_ids)]
    out: list[str | charts.Chart] = [
        _kv_table("Params", runs, [r.params for r in runs], fold_defaults=True)
        + _kv_table("Metrics (latest)", runs, [r.metrics for r in runs], numbers=True)]
    if len(runs) > 2:
        out += _parallel(runs, metric)
    histories: dict[str, dict[str, list]] = {}
    for r in runs:
        df = r.metric_history()
        for key, g in df.groupby("key"):
            histories.setdefault(key, {})[_label(r)] = list(zip(g["step"].tolist(), g["value"].tolist()))
    histories = {k: v for k, v in sorted(histories.items()) if any(len(p) > 1 for p in v.values())}
    if histories:
        out += ["<h4>Metric histories</h4>",
                charts.line_chart(histories, x_kind="step", title="metric histories")]
    out.append(_source_diff(runs))
    return charts.Report(out)


def compare_html(run_ids: Sequence[str], metric: str | None = None) -> str:
    """:func:`compare_report` as one static HTML fragment (charts as SVG)."""
    return "<div class='cellops-compare'>" + compare_report(run_ids, metric).html() + "</div>"
