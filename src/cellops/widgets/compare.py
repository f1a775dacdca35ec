"""``%compare``: params side by side with differences highlighted, metric histories as
charts, and a diff of the runs' source."""

from __future__ import annotations

import difflib
import html
from typing import Sequence

import cellops
from cellops.display import format_number
from cellops.errors import InvalidArgumentError

from .live import svg_lines

_DIFF = "background:#fff3b0"


def _label(run: cellops.Run) -> str:
    return f"{run.name or 'run'} ({run.short_id})"


def _kv_table(title: str, runs: list[cellops.Run], values: list[dict]) -> str:
    keys = sorted(set().union(*values))
    if not keys:
        return ""
    head = "".join(f"<th>{html.escape(_label(r))}</th>" for r in runs)
    rows = []
    for k in keys:
        vals = [v.get(k) for v in values]
        differs = len({repr(v) for v in vals}) > 1
        cells = "".join(
            f"<td>{'' if v is None else html.escape(format_number(v))}</td>"
            for v in vals)
        rows.append(f"<tr style='{_DIFF if differs else ''}' class='{'differs' if differs else ''}'>"
                    f"<td><b>{html.escape(k)}</b></td>{cells}</tr>")
    return (f"<h4>{title}</h4><table class='cellops-compare'><tr><th></th>{head}</tr>"
            + "".join(rows) + "</table>")


def _source_diff(runs: list[cellops.Run]) -> str:
    base = runs[0]
    parts = []
    for other in runs[1:]:
        a, b = (base.source or "").splitlines(), (other.source or "").splitlines()
        if a == b:
            continue
        lines = []
        for line in difflib.unified_diff(a, b, _label(base), _label(other), lineterm=""):
            colour = {"+": "#e6ffed", "-": "#ffeef0"}.get(line[:1], "")
            style = f" style='background:{colour}'" if colour and not line.startswith(("+++", "---")) else ""
            lines.append(f"<span{style}>{html.escape(line)}</span>")
        parts.append("<pre class='cellops-diff'>" + "\n".join(lines) + "</pre>")
    if not parts:
        return "<h4>Source</h4><p>Same source.</p>" if base.source else ""
    return "<h4>Source diff</h4>" + "".join(parts)


def compare_html(run_ids: Sequence[str]) -> str:
    """The comparison of two or more runs as one HTML fragment."""
    if len(run_ids) < 2:
        raise InvalidArgumentError("Compare needs at least two runs.")
    runs = [cellops.get_run(r) for r in run_ids]
    out = [_kv_table("Params", runs, [r.params for r in runs]),
           _kv_table("Metrics (latest)", runs, [r.metrics for r in runs])]
    histories = {}
    for r in runs:
        df = r.metric_history()
        for key, g in df.groupby("key"):
            histories.setdefault(key, {})[_label(r)] = list(zip(g["step"].tolist(), g["value"].tolist()))
    charts = [svg_lines(key, lines) for key, lines in sorted(histories.items())
              if any(len(p) > 1 for p in lines.values())]
    if charts:
        out.append("<h4>Metric histories</h4><div>" + "".join(charts) + "</div>")
    out.append(_source_diff(runs))
    return "<div class='cellops-compare'>" + "".join(out) + "</div>"
