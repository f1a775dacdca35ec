"""``%runs``: a runs table with a filter box, sorting, and selection of runs to compare."""

from __future__ import annotations

import html
from typing import Any

import cellops
from cellops.display import format_duration, format_number, status_badge
from cellops.errors import CellopsError

from .compare import compare_html

MAX_ROWS = 200


def runs_html(df: Any, max_metrics: int = 6, max_params: int = 4) -> str:
    """The table part: one row per run, key metrics and params."""
    if df.empty:
        return "<p>No runs match.</p>"
    metrics = [c for c in df.columns if c.startswith("metrics.")][:max_metrics]
    params = [c for c in df.columns if c.startswith("params.")][:max_params]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["run", "name", "status", "started", "duration"]
                   + [c.split(".", 1)[1] for c in metrics + params])
    rows = []
    for rec in df.to_dict(orient="records"):
        dur = rec["duration_s"]
        cells = [f"<code>{rec['run_id'][:8]}</code>", html.escape(str(rec["name"] or "")),
                 status_badge(rec["status"]),
                 rec["start_time"].strftime("%Y-%m-%d %H:%M:%S"),
                 format_duration(None if dur != dur else dur)]
        for c in metrics:
            v = rec[c]
            cells.append("" if v != v or v is None else format_number(v))
        for c in params:
            v = rec[c]
            cells.append("" if v is None or v != v else html.escape(str(v))[:40])
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='cellops-runs'><tr>{head}</tr>{''.join(rows)}</table>"


class RunsTable:
    """The widget behind ``%runs``; ``.widget`` is what the notebook displays."""

    def __init__(self, experiment: str | None = None, filter: str | None = None) -> None:  # noqa: A002
        import ipywidgets as w

        self.experiment = experiment
        self.filter_box = w.Text(value=filter or "", description="Filter",
                                 placeholder="metrics.acc > 0.9 and params.model = 'rf'",
                                 continuous_update=False, layout=w.Layout(width="60%"))
        self.sort_by = w.Dropdown(options=["attributes.start_time"], value="attributes.start_time",
                                  description="Sort by")
        self.descending = w.ToggleButton(value=True, description="descending")
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
        self.refresh()

    def refresh(self) -> None:
        order = f"{self.sort_by.value} {'DESC' if self.descending.value else 'ASC'}"
        try:
            df = cellops.search_runs(experiment=self.experiment, filter=self.filter_box.value or None,
                                     order_by=[order], max_results=MAX_ROWS)
        except CellopsError as exc:
            self.message.value = f"<pre style='color:var(--jp-error-color1, #d62728)'>{html.escape(str(exc))}</pre>"
            return
        self.df = df
        self.message.value = f"<small>{len(df)} runs{' (first 200)' if len(df) == MAX_ROWS else ''}</small>"
        self.table.value = runs_html(df)
        options = ["attributes.start_time", "attributes.run_name", "attributes.status"] + [
            c for c in df.columns if c.startswith(("metrics.", "params."))]
        if list(self.sort_by.options) != options:
            current = self.sort_by.value
            self.sort_by.options = options
            self.sort_by.value = current if current in options else options[0]
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
