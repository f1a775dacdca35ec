"""``%runs``: a runs table with a filter box, sorting, and selection of runs to compare."""

from __future__ import annotations

import html
from typing import Any

import cellops
from cellops.display import format_duration, format_number, status_badge
from cellops.errors import CellopsError

from .compare import compare_html

MAX_ROWS = 200
RUNS_MIME = "application/vnd.cellops.runs+json"


_CELL = "padding:2px 8px;white-space:nowrap;text-align:left"
_STICKY = ("position:sticky;background:var(--jp-layout-color1, white);z-index:1")


def param_columns(df: Any, limit: int = 6) -> list[str]:
    """The params worth a column: those whose values vary across the shown runs first (what
    the user is exploring), then constant ones, ``limit`` in all."""
    params = [c for c in df.columns if c.startswith("params.")]

    def varies(c: str) -> bool:
        values = {str(v) for v in df[c] if v is not None and v == v}
        return len(values) > 1 or (bool(values) and df[c].isna().any())

    varying = [c for c in params if varies(c)]
    return (varying + [c for c in params if c not in varying])[:limit]


_SORT_COLUMNS = {"name": "attributes.run_name", "status": "attributes.status",
                 "started": "attributes.start_time", "experiment": "attributes.experiment"}


def sort_label(column: str) -> str:
    """A sort column as the user reads it: ``attributes.start_time`` -> ``started``,
    ``metrics.acc`` -> ``acc (metric)``, ``params.lr`` -> ``lr (param)``."""
    for label, col in _SORT_COLUMNS.items():
        if col == column:
            return label
    kind, _, key = column.partition(".")
    return f"{key} ({kind.rstrip('s')})"


def runs_html(df: Any, max_metrics: int = 6, max_params: int = 6,
              order: tuple[str, bool] | None = None) -> str:
    """The runs as a static HTML table (what a saved notebook, nbviewer and GitHub show):
    one row per run; run and name columns stay put while the rest scrolls sideways; an
    experiment column when the runs come from several; the params that vary first.
    ``order`` — (column, descending) — puts an arrow on the sorted column's header."""
    if df.empty:
        return "<p>No runs match.</p>"
    metrics = [c for c in df.columns if c.startswith("metrics.")][:max_metrics]
    params = param_columns(df, max_params)
    several = "experiment" in df.columns and df["experiment"].nunique() > 1
    heads = ["run", "name"] + (["experiment"] if several else []) + \
        ["status", "started", "duration"] + [c.split(".", 1)[1] for c in metrics + params]
    kinds = [""] * (len(heads) - len(metrics) - len(params)) + ["metric"] * len(metrics) + \
        ["param"] * len(params)

    columns = [None, "attributes.run_name"] + (["attributes.experiment"] if several else []) + \
        ["attributes.status", "attributes.start_time", None] + metrics + params

    def th(i: int, h: str) -> str:
        sticky = f"{_STICKY};left:{0 if i == 0 else 76}px;" if i < 2 else ""
        title = f" title='{kinds[i]}'" if kinds[i] else ""
        arrow = (" ▼" if order[1] else " ▲") if order and columns[i] == order[0] else ""
        return f"<th style='{_CELL};{sticky}'{title}>{html.escape(h)}{arrow}</th>"

    rows = []
    for rec in df.to_dict(orient="records"):
        dur = rec["duration_s"]
        cells = [f"<code>{rec['run_id'][:8]}</code>", html.escape(str(rec["name"] or ""))]
        if several:
            cells.append(html.escape(str(rec["experiment"])))
        cells += [status_badge(rec["status"]), rec["start_time"].strftime("%Y-%m-%d %H:%M"),
                  format_duration(None if dur != dur else dur)]
        for c in metrics:
            v = rec[c]
            cells.append("" if v is None or v != v else format_number(v))
        for c in params:
            v = rec[c]
            cells.append("" if v is None or v != v else html.escape(format_number(v)[:40]))
        tds = []
        for i, c in enumerate(cells):
            sticky = f"{_STICKY};left:{0 if i == 0 else 76}px;" if i < 2 else ""
            align = "text-align:right;" if kinds[i] == "metric" else ""
            tds.append(f"<td style='{_CELL};{align}{sticky}'>{c}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(th(i, h) for i, h in enumerate(heads))
    return ("<div class='cellops-runs-scroll' style='overflow-x:auto;max-width:100%'>"
            "<table class='cellops-runs' style='border-collapse:collapse;"
            "color:var(--jp-content-font-color1, inherit)'>"
            f"<tr>{head}</tr>{''.join(rows)}</table></div>")


class RunsTable:
    """The widget behind ``%runs``; ``.widget`` is what the notebook displays."""

    def __init__(self, experiment: str | None = None, filter: str | None = None) -> None:  # noqa: A002
        import ipywidgets as w

        self.experiment = experiment
        self.filter_box = w.Text(value=filter or "", description="Filter",
                                 placeholder="metrics.acc > 0.9 and params.model = 'rf'",
                                 continuous_update=False, layout=w.Layout(width="60%"))
        self.sort_by = w.Dropdown(options=[("started", "attributes.start_time")],
                                  value="attributes.start_time", description="Sort by")
        self.descending = w.ToggleButton(value=True, description="▼ descending",
                                         tooltip="Click to reverse the order")
        self.select = w.SelectMultiple(options=[], description="Compare", rows=6,
                                       layout=w.Layout(width="60%"))
        self.compare_button = w.Button(description="Compare selected", icon="columns")
        self.message = w.HTML()
        self.table = w.HTML()
        self.comparison = w.HTML()
        self.df = None
        self.filter_box.observe(lambda _: self.refresh(), names="value")
        self.sort_by.observe(lambda _: self.refresh(), names="value")
        self.descending.observe(lambda _: self.refresh(), names="value")
        self.compare_button.on_click(lambda _: self.compare())
        self.widget = w.VBox([
            w.HBox([self.filter_box, self.sort_by, self.descending]),
            self.message, self.table,
            w.HBox([self.select, self.compare_button]), self.comparison,
        ])
        # A filter given with %runs that cannot be parsed is the magic's error (the same
        # message and caret as the CLI's), not an empty table; one typed later is shown
        # in the widget.
        self.refresh(raise_errors=True)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget (front ends without the cellops extension: classic Notebook, VS
        Code), the grid's mime type for JupyterLab, and a static rendering of the table —
        what a notebook saved without widget state, nbviewer, GitHub and nbconvert show."""
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.static_html()
        # JupyterLab with the cellops extension draws the live grid from this instead (it
        # reads the runs from the server: it outlives the kernel); elsewhere the HTML shows.
        bundle[RUNS_MIME] = {"experiment": self.experiment, "filter": self.filter_box.value or None}
        return bundle

    def static_html(self) -> str:
        where = f"experiment {html.escape(self.experiment)}" if self.experiment else "all experiments"
        count = 0 if self.df is None else len(self.df)
        table = runs_html(self.df) if self.df is not None else ""
        return (f"<div class='cellops-runs-static'><small>{count} runs in {where}"
                f"{html.escape(' matching ' + self.filter_box.value) if self.filter_box.value else ''}"
                f"</small>{table}</div>")

    def refresh(self, raise_errors: bool = False) -> None:
        self.descending.description = "▼ descending" if self.descending.value else "▲ ascending"
        order = f"{self.sort_by.value} {'DESC' if self.descending.value else 'ASC'}"
        try:
            df = cellops.search_runs(experiment=self.experiment, filter=self.filter_box.value or None,
                                     order_by=[order], max_results=MAX_ROWS)
        except CellopsError as exc:
            if raise_errors:
                raise
            self.message.value = f"<pre style='color:var(--jp-error-color1, #d62728)'>{html.escape(str(exc))}</pre>"
            return
        self.df = df
        self.message.value = f"<small>{len(df)} runs{' (first 200)' if len(df) == MAX_ROWS else ''}</small>"
        self.table.value = runs_html(df, order=(self.sort_by.value, self.descending.value))
        options = [(sort_label(c), c) for c in ["attributes.start_time", "attributes.run_name",
                                                 "attributes.status"]
                   + [c for c in df.columns if c.startswith(("metrics.", "params."))]]
        if list(self.sort_by.options) != options:
            current = self.sort_by.value
            self.sort_by.options = options
            values = [v for _, v in options]
            self.sort_by.value = current if current in values else values[0]
        self.select.options = [(f"{r['run_id'][:8]} {r['name'] or ''}", r["run_id"])
                               for r in df.to_dict(orient="records")]

    def compare(self) -> None:
        if len(self.select.value) < 2:
            self.comparison.value = "<p>Select two or more runs to compare.</p>"
            return
        try:
            self.comparison.value = compare_html(list(self.select.value))
        except CellopsError as exc:
            self.comparison.value = f"<pre style='color:var(--jp-error-color1, #d62728)'>{html.escape(str(exc))}</pre>"
