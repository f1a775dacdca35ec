"""The live metric chart of a ``%%track`` cell.

While the cell runs, metrics are drawn with **bqplot** (a Jupyter widget library with a
prebuilt JupyterLab extension and JupyterLab theme colours): one figure per metric, or per
group of metrics that differ only by a split prefix or suffix (``train_loss`` and
``val_loss`` overlaid on one ``loss`` chart), steps on x, values on hover, a noisy line
drawn faint under its moving average (see :func:`noisy`). It is updated in
place at most once every ``interval`` seconds with numpy arrays of at most
:data:`MAX_POINTS` points per line (tens of microseconds per update; logging a metric
between updates is one list append).

When the cell ends the widget gives way to the record that stays in the notebook: a
:class:`cellops.charts.Chart` — a plotly figure with log-scale and smoothing buttons that
work in the browser without a kernel, and the same chart as inline SVG for viewers
without plotly. A cell that logs too fast for a redraw gets only that record, and so does
a cell nobody watches: outside a kernel (a terminal IPython) and in batch executions
(papermill, pipeline steps, sweep trials).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from cellops import charts
from cellops.charts import metric_groups

MAX_POINTS = 300  # per line in the live view: the shape, not every step
MAX_CHARTS = 6
HOVER_POINTS = 60  # points per line that show their value on hover


def panels(series: dict[str, list[tuple[int, float]]]) -> dict[str, dict[str, list]]:
    """The charts to draw: title -> {metric: points}, for up to :data:`MAX_CHARTS` groups
    (see :func:`cellops.charts.metric_groups`) that have a line of two points or more.
    ``series`` holds finite values only (:meth:`LiveChart.on_rows` drops the others)."""
    out = {}
    for title, keys in metric_groups(series).items():
        group = {k: series[k] for k in keys}
        if any(len(p) > 1 for p in group.values()):
            out[title] = group
        if len(out) == MAX_CHARTS:
            break
    return out


def record(series: dict[str, list[tuple[int, float]]]) -> charts.Chart:
    """The chart kept in the notebook once the cell has ended."""
    groups = panels(series)
    return charts.line_chart(groups, x_kind="step",
                             y_labels={t: t for t, keys in groups.items() if len(keys) > 1},
                             title="metrics")


NOISY = 4.0  # a line's total variation over its range above which it is drawn smoothed
LIVE_SMOOTHING = 0.9  # EMA weight on the live view's (at most MAX_POINTS) points


def noisy(ys: Any) -> bool:
    """Whether a line is noise around a trend: it travels (sum of its step-to-step
    changes) more than :data:`NOISY` times its range. A steady curve travels its range
    once; minibatch losses travel it dozens of times."""
    import numpy as np

    if len(ys) < charts.MIN_SMOOTH_POINTS:
        return False
    span = float(ys.max() - ys.min())
    return span > 0 and float(np.abs(np.diff(ys)).sum()) > NOISY * span


class LiveView:
    """bqplot figures updated in place. While the cell runs the kernel is busy, so only
    what runs in the browser works on them: hover values, the legend. A noisy line is
    drawn faint with its exponential moving average over it (as W&B and TensorBoard
    smooth), since the smoothing buttons of the record need the cell to have ended."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.box = w.HBox(layout=w.Layout(flex_flow="row wrap", grid_gap="8px"))
        self.box.add_class("cellops-live")
        self._figures: dict[str, Any] = {}
        self._marks: dict[tuple[str, str], tuple[Any, Any, Any | None]] = {}  # line, dots, smooth
        self._scales: dict[str, dict[str, Any]] = {}
        self._smoothed: set[str] = set()  # the titles of figures with a smoothed line

    def _figure(self, title: str, y_label: str) -> Any:
        import bqplot as bq

        x, y = bq.LinearScale(), bq.LinearScale()
        fig = bq.Figure(title=title, marks=[], axes=[
            bq.Axis(scale=x, label="step", grid_lines="dashed", tick_format="~s"),
            bq.Axis(scale=y, side="left", label=y_label, grid_lines="dashed",
                    tick_format=".3~g")],
            fig_margin={"top": 40, "bottom": 40, "left": 56, "right": 12},
            legend_location="top-right", layout={"width": "400px", "height": "260px"},
            scale_x=x, scale_y=y)  # its own scales, not two more default ones
        self._figures[title] = fig
        self._scales[title] = {"x": x, "y": y}  # for the marks added later
        self.box.children = (*self.box.children, fig)
        return fig

    def _add(self, fig: Any, title: str, name: str) -> tuple[Any, Any, Any]:
        import bqplot as bq

        colour = charts.PALETTE[len([k for k in self._marks if k[0] == title])
                                % len(charts.PALETTE)]
        scales = self._scales[title]
        line = bq.Lines(scales=scales, colors=[colour], labels=[name], display_legend=True,
                        stroke_width=1.8)
        dots = bq.Scatter(scales=scales, colors=[colour], default_size=14,
                          tooltip=bq.Tooltip(fields=["x", "y"], labels=["step", name],
                                             formats=["", ".4~g"]))
        self._marks[(title, name)] = (line, dots, None)
        fig.marks = [*fig.marks, line, dots]
        return line, dots, None

    def _smooth(self, fig: Any, title: str, name: str) -> Any:
        """The line of a series' moving average, added the first time it is smoothed."""
        import bqplot as bq

        line, dots, _ = self._marks[(title, name)]
        smooth = bq.Lines(scales=line.scales, colors=line.colors, labels=[name],
                          stroke_width=2.2)
        self._marks[(title, name)] = (line, dots, smooth)
        fig.marks = [*fig.marks, smooth]
        return smooth

    def update(self, groups: dict[str, dict[str, list]]) -> None:
        import numpy as np

        for title, series in groups.items():
            fig = self._figures.get(title) or self._figure(
                title, title if len(series) > 1 else "")
            lines = {}
            for name, pts in series.items():
                pts = charts.thin(pts, MAX_POINTS)
                hover = charts.thin(pts, HOVER_POINTS)
                lines[name] = (np.array([p[0] for p in pts], dtype=float),
                               np.array([p[1] for p in pts], dtype=float),
                               np.array([p[0] for p in hover], dtype=float),
                               np.array([p[1] for p in hover], dtype=float))
            # One chart, one look: if a line in it is noisy, all of its lines are smoothed.
            smoothed = any(noisy(ys) for _, ys, _, _ in lines.values())
            faint = [0.3 if smoothed else 1.0]
            switched = smoothed != (title in self._smoothed)
            for name, (xs, ys, hx, hy) in lines.items():
                marks = self._marks.get((title, name))
                restyle = switched or marks is None  # the look is sent when it changes only
                line, dots, smooth = marks or self._add(fig, title, name)
                with line.hold_sync():
                    line.x, line.y = xs, ys
                    if restyle:
                        line.opacities, line.display_legend = faint, not smoothed
                with dots.hold_sync():
                    dots.x, dots.y = hx, hy
                    if restyle:
                        dots.opacities = np.array(faint)
                if smoothed and smooth is None:
                    smooth = self._smooth(fig, title, name)
                if smooth is not None and (smoothed or smooth.visible):
                    with smooth.hold_sync():
                        smooth.x = xs
                        smooth.y = np.array(charts.ema(ys.tolist(), LIVE_SMOOTHING))
                        smooth.visible = smooth.display_legend = smoothed
            if switched:
                fig.title = f"{title} (smoothed)" if smoothed else title
                (self._smoothed.add if smoothed else self._smoothed.discard)(title)

    def close(self) -> None:
        import numpy as np

        empty = np.zeros(0)
        for marks in self._marks.values():
            # Emptied first: papermill (nbclient) saves the last state of every widget it
            # saw, closed or not, in the notebook's metadata; this keeps that state small.
            for mark in filter(None, marks):
                with mark.hold_sync():
                    mark.x, mark.y = empty, empty
                mark.close()
        for title, fig in self._figures.items():
            for part in (*fig.axes, *self._scales[title].values()):
                part.close()
            fig.close()
        self.box.close()


def _watched() -> bool:
    """Whether someone may be watching the cell run: a kernel with a front end, and not a
    batch execution (a papermill run through cellops' engine, a pipeline step, a sweep
    trial), where a live widget would only leave its state in the saved notebook."""
    from IPython import get_ipython

    from cellops.execution import KernelEnv

    if getattr(get_ipython(), "kernel", None) is None:
        return False
    env = KernelEnv.current()
    return env.papermill_token is None and env.run_id is None


class LiveChart:
    """Collects a run's metrics as they are logged and redraws at most every ``interval`` s."""

    def __init__(self, run: Any, interval: float = 1.0) -> None:
        self.run = run
        self.interval = interval
        self._stop: Any = None
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._handle: Any = None
        self._view: LiveView | None = None
        self._live = _watched()
        self._last = time.monotonic()  # the first redraw waits an interval: fast cells get none

    def __enter__(self) -> LiveChart:
        self._stop = self.run.on_metrics(self.on_rows)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._stop is not None:
            self._stop()
        try:
            self.finish()
        except Exception as error:  # noqa: BLE001 - a chart must never fail the user's cell
            print(f"cellops: the metrics chart could not be drawn ({error!r}).", file=sys.stderr)

    def on_rows(self, rows: list[tuple]) -> None:
        # Called for every logged step: kept to a few appends (locals, no method calls).
        series, isfinite = self.series, math.isfinite
        for _, key, step, value, _ts in rows:
            if value is not None and isfinite(value):  # NaN/inf cannot be drawn
                points = series.get(key)
                if points is None:
                    points = series[key] = []
                points.append((step, value))
        if self._live:
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                try:
                    self.draw()
                except Exception as error:  # noqa: BLE001 - logging a metric must not fail
                    self._live = False  # no more live redraws; the record is still tried
                    print(f"cellops: the live chart stopped ({error!r}).", file=sys.stderr)

    def draw(self) -> None:
        """Update the live view (creating it on the first call with something to draw)."""
        from IPython.display import display

        groups = panels(self.series)
        if not groups:
            return  # a chart of one point says nothing; wait for a second
        if self._view is None:
            self._view = LiveView()
            self._view.update(groups)
            # The bundle by hand: display(widget) would also build a text/plain repr of every
            # widget in the tree, which costs more than the widgets themselves.
            self._handle = display({
                "application/vnd.jupyter.widget-view+json": self._view.box.get_view_spec(),
                "text/plain": "cellops live metrics chart (a widget; the record replaces it "
                              "when the cell ends)",
            }, raw=True, display_id=True)
        else:
            self._view.update(groups)

    def finish(self) -> None:
        """Replace the live view by the record (or show the record, if nothing was live)."""
        from IPython.display import display

        if not panels(self.series):
            if self._handle is not None:  # cannot happen: a live view had points
                self._handle.update({"text/plain": ""}, raw=True)
        else:
            chart = record(self.series)
            if self._handle is None:
                display(chart)
            else:
                self._handle.update(chart)
        if self._view is not None:
            self._view.close()
            self._view = None
