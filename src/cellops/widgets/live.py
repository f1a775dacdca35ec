"""The live metric chart of a ``%%track`` cell.

While the cell runs, metrics are drawn with **bqplot** (a Jupyter widget library with a
prebuilt JupyterLab extension and JupyterLab theme colours): one figure per metric, or per
group of metrics that differ only by a split prefix or suffix (``train_loss`` and
``val_loss`` overlaid on one ``loss`` chart), steps on x, values on hover, a linear/log
toggle that works while the kernel is busy, a noisy line drawn faint under its moving
average (see :func:`noisy`). It is updated in place at most once every ``interval``
seconds with numpy arrays of at most :data:`MAX_POINTS` points per line; between updates,
logging a metric costs the chart one list extend (:meth:`cellops.Run.on_metrics` hands
the points over in batches), and the widgets are made once per kernel and reused by later
cells (:meth:`LiveView.take`).

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


class _Line:
    """One metric's marks, in the linear and the log figure of its chart: the line, the
    dots that show values on hover, and (added the first time it is needed) the line of
    its moving average."""

    def __init__(self, scales: tuple[dict, dict], colour: str) -> None:
        import bqplot as bq

        self.marks = []
        for sc in scales:
            line = bq.Lines(scales=sc, colors=[colour], display_legend=False, stroke_width=1.8)
            dots = bq.Scatter(scales=sc, colors=[colour], default_size=14,
                              tooltip=bq.Tooltip(fields=["x", "y"], formats=["", ".4~g"]))
            self.marks.append([line, dots, None])
        self.scales, self.colour, self.name = scales, colour, ""

    def name_as(self, name: str) -> None:
        if name != self.name:
            self.name = name
            for line, dots, smooth in self.marks:
                line.labels = [name]
                dots.tooltip.labels = ["step", name]
                if smooth is not None:
                    smooth.labels = [name]

    def add_smooth_lines(self) -> None:
        import bqplot as bq

        for marks, sc in zip(self.marks, self.scales):
            if marks[2] is None:
                marks[2] = bq.Lines(scales=sc, colors=[self.colour], labels=[self.name],
                                    stroke_width=2.2, visible=False)

    def all(self) -> list[Any]:
        return [m for marks in self.marks for m in marks if m is not None]


class _Chart:
    """One chart of the live view, drawn twice: on a linear and on a log y scale (the
    toggle above the charts shows one or the other in the browser, while the kernel is
    busy running the cell). The same figures serve the charts of later cells.

    Its legend is a line of HTML under the plot, not bqplot's, which bqplot draws inside
    the plot area where it covers the lines (a loss ends in the top right corner of a
    short run's chart)."""

    def __init__(self) -> None:
        import bqplot as bq
        import ipywidgets as w

        x, y, ylog = bq.LinearScale(), bq.LinearScale(), bq.LogScale()
        self.scales = ({"x": x, "y": y}, {"x": x, "y": ylog})
        self.figures = []
        for sc in self.scales:
            self.figures.append(bq.Figure(
                title="", marks=[], axes=[
                    bq.Axis(scale=x, label="step", grid_lines="dashed", tick_format="~s"),
                    bq.Axis(scale=sc["y"], side="left", grid_lines="dashed",
                            tick_format=".3~g")],
                fig_margin={"top": 40, "bottom": 40, "left": 56, "right": 12},
                legend_location="top-right", layout={"width": "400px", "height": "260px"},
                scale_x=x, scale_y=sc["y"]))  # its own scales, not two more default ones
        self.legend = w.HTML(layout={"margin": "0 0 0 56px"})
        self.legend.add_class("cellops-live-legend")
        self.boxes = tuple(w.VBox([fig, self.legend]) for fig in self.figures)
        self.lines: list[_Line] = []  # every line drawn so far, reused in order
        self.used: dict[str, _Line] = {}  # metric -> its line, this cell
        self.smoothed = False
        self.ticks: list[tuple[float, ...]] = [(), ()]  # y tick values, linear and log

    def start(self, title: str, y_label: str) -> None:
        """Begin drawing a cell's chart (the figures may have drawn another one before)."""
        self.used, self.smoothed = {}, False
        for fig in self.figures:
            fig.title = title
            fig.axes[1].label = y_label

    def line(self, name: str) -> _Line:
        line = self.used.get(name)
        if line is None:
            if len(self.used) == len(self.lines):
                self.lines.append(_Line(self.scales, charts.PALETTE[
                    len(self.lines) % len(charts.PALETTE)]))
            line = self.used[name] = self.lines[len(self.used)]
            line.name_as(name)
        return line

    def show_marks(self) -> None:
        """Put the marks of this cell's lines (only) on the figures, and name them in the
        legend."""
        for i, fig in enumerate(self.figures):
            marks = [m for line in self.used.values() for m in line.marks[i] if m is not None]
            if marks != list(fig.marks):
                fig.marks = marks
        legend = legend_html([(name, line.colour) for name, line in self.used.items()])
        if legend != self.legend.value:
            self.legend.value = legend

    def clear(self) -> None:
        """Empty the lines this cell drew (the others were emptied before)."""
        import numpy as np

        empty = np.zeros(0)
        for line in self.used.values():
            for mark in line.all():
                with mark.hold_sync():
                    mark.x, mark.y = empty, empty


class LiveView:
    """bqplot figures updated in place. While the cell runs the kernel is busy, so only
    what runs in the browser works on them: hover values, the legend, and the linear/log
    toggle (a ``jslink`` between the toggle and a ``Stack`` of the linear and the log
    figures). A noisy line is drawn faint with its exponential moving average over it (as
    W&B and TensorBoard smooth), since the smoothing buttons of the record need the cell
    to have ended.

    Widgets are made once per kernel: when a cell ends its view is emptied and kept for
    the next cell's (:meth:`take`, :meth:`release`), so a tracked cell after the first
    pays for data messages only."""

    _idle: list[LiveView] = []  # the emptied view the next cell takes

    def __init__(self) -> None:
        import ipywidgets as w

        layout = {"flex_flow": "row wrap", "grid_gap": "8px"}
        self.rows = (w.HBox(layout=layout), w.HBox(layout=layout))  # linear, log
        self.scale = w.ToggleButtons(options=["linear", "log"], value="linear",
                                     tooltips=["y on a linear scale",
                                               "y on a log scale (values > 0)"],
                                     style={"button_width": "64px"})
        stack = w.Stack(children=self.rows, selected_index=0)
        self._link = w.jslink((self.scale, "index"), (stack, "selected_index"))
        self.box = w.VBox([self.scale, stack])
        self.box.add_class("cellops-live")
        self._charts: list[_Chart] = []  # every chart made so far
        self._used: dict[str, _Chart] = {}  # title -> its chart, this cell

    @classmethod
    def take(cls) -> LiveView:
        """The kernel's idle view, or a new one."""
        try:
            return cls._idle.pop()
        except IndexError:
            return cls()

    def release(self) -> None:
        """Empty the view and keep it for the next cell. Emptied first, also because
        papermill (nbclient) saves the last state of every widget it saw in the notebook's
        metadata: this keeps that state small."""
        for chart in self._used.values():
            chart.clear()
        self._used = {}
        LiveView._idle[:] = [self]

    def _chart(self, title: str, y_label: str) -> _Chart:
        chart = self._used.get(title)
        if chart is None:
            if len(self._used) == len(self._charts):
                self._charts.append(_Chart())
            chart = self._used[title] = self._charts[len(self._used)]
            chart.start(title, y_label)
            used = list(self._used.values())
            for i, row in enumerate(self.rows):
                row.children = [c.boxes[i] for c in used]
        return chart

    def update(self, groups: dict[str, dict[str, list]]) -> None:
        import numpy as np

        for title, series in groups.items():
            chart = self._chart(title, title if len(series) > 1 else "")
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
            switched = smoothed != chart.smoothed
            faint = [0.3 if smoothed else 1.0]
            for name, (xs, ys, hx, hy) in lines.items():
                fresh = name not in chart.used
                line = chart.line(name)
                restyle = switched or fresh  # the look is sent when it changes only
                if smoothed:
                    line.add_smooth_lines()
                    avg = np.array(charts.ema(ys.tolist(), LIVE_SMOOTHING))
                for log, (mline, dots, smooth) in enumerate(line.marks):
                    y, dx, dy = ys, hx, hy
                    if log:  # a log scale cannot place values <= 0: gaps there
                        y, keep = _positive(ys), hy > 0
                        dx, dy = hx[keep], hy[keep]
                    with mline.hold_sync():
                        mline.x, mline.y = xs, y
                        if restyle:
                            mline.opacities = faint
                    with dots.hold_sync():
                        dots.x, dots.y = dx, dy
                        if restyle:
                            dots.opacities = np.array(faint)
                    if smoothed:
                        with smooth.hold_sync():
                            smooth.x, smooth.y = xs, _positive(avg) if log else avg
                            smooth.visible = True
                    elif smooth is not None and smooth.visible:  # the noise has settled
                        smooth.visible = False
            chart.show_marks()
            # Round y ticks, a few (d3 labels every 0.1 of a linear axis, every digit of a
            # log one): sent when they change only.
            ys = np.concatenate([ys for _, ys, _, _ in lines.values()])
            positive = ys[ys > 0]
            ticks = (tuple(charts.nice_ticks(float(ys.min()), float(ys.max()))),
                     tuple(charts.log_ticks(float(positive.min()), float(positive.max())))
                     if len(positive) else ())
            for fig, new, old in zip(chart.figures, ticks, chart.ticks):
                if new != old:
                    axis = fig.axes[1]
                    with axis.hold_sync():
                        axis.tick_values = np.array(new) if new else None
                        if fig is chart.figures[0]:
                            axis.tick_format = tick_format(new)
            chart.ticks = list(ticks)
            if switched:
                chart.smoothed = smoothed
                for fig in chart.figures:
                    fig.title = f"{title} (smoothed)" if smoothed else title


def legend_html(entries: list[tuple[str, str]]) -> str:
    """The legend of a live chart: a short stroke of each line's colour and its name, on
    one line under the plot (wrapping if the names are long); text in the theme's colour."""
    import html

    keys = "".join(
        "<span style='display:inline-flex;align-items:center;gap:4px;margin-right:12px;"
        "white-space:nowrap'><svg width='16' height='8' aria-hidden='true'>"
        f"<line x1='0' x2='16' y1='4' y2='4' stroke='{colour}' stroke-width='2.5'/></svg>"
        f"{html.escape(name)}</span>" for name, colour in entries)
    return ("<div style='font-size:11px;line-height:16px;color:var(--jp-ui-font-color1);"
            f"display:flex;flex-wrap:wrap'>{keys}</div>")


def tick_format(ticks: list[float] | tuple[float, ...]) -> str:
    """The d3 format that tells evenly spaced ticks apart: as many significant digits as
    their step needs (0.972, 0.974), SI prefixes from 10,000 on (20k)."""
    if len(ticks) < 2:
        return ".3~g"
    big, step = max(abs(ticks[0]), abs(ticks[-1])), ticks[1] - ticks[0]
    if big >= 1e4:
        return "~s"
    return f".{max(3, math.ceil(math.log10(big / step)) + 1)}~r"


def _positive(values: Any) -> Any:
    import numpy as np

    return np.where(values > 0, values, np.nan)


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


def prepare_when_idle(delay: float = 0.5) -> None:
    """Import the chart library once the kernel is idle (after the cell that loaded
    cellops), so that the first tracked cell does not pay for it: 0.05 s with numpy and
    pandas loaded, 0.35 s without. The kernel runs the import between cells (a callback
    on its event loop never interrupts a running cell); outside a watched kernel, nothing.
    """
    import asyncio

    if not _watched():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a kernel without a running loop here: the first cell imports
        return
    loop.call_later(delay, _import_chart_library)


def _import_chart_library() -> None:
    try:
        import bqplot  # noqa: F401
    except Exception:  # noqa: BLE001 - the first live chart will say what is wrong
        pass


class LiveChart:
    """Collects a run's metrics in batches (one per ``interval`` seconds) and redraws."""

    def __init__(self, run: Any, interval: float = 1.0) -> None:
        self.run = run
        self.interval = interval
        self._stop: Any = None
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._handle: Any = None
        self._view: LiveView | None = None
        self._live = _watched()
        self._broken = False

    def __enter__(self) -> LiveChart:
        # Points come in batches, one per interval: logging a step costs the chart nothing
        # but a list extend (see Run.on_metrics); a cell shorter than that gets no redraw.
        self._stop = self.run.on_metrics(self.on_rows, every=self.interval)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live = False  # the last batch goes to the record, not to a redraw
        try:
            if self._stop is not None:
                self._stop()
            self.finish()
        except Exception as error:  # noqa: BLE001 - a chart must never fail the user's cell
            print(f"cellops: the metrics chart could not be drawn ({error!r}).", file=sys.stderr)

    def on_rows(self, rows: list[tuple]) -> None:
        """Take a batch of logged points (see :meth:`cellops.Run.on_metrics`) and redraw."""
        series, isfinite = self.series, math.isfinite
        for _, key, step, value, _ts in rows:
            if value is not None and isfinite(value):  # NaN/inf cannot be drawn
                points = series.get(key)
                if points is None:
                    points = series[key] = []
                points.append((step, value))
        if self._live:
            try:
                self.draw()
            except Exception as error:  # noqa: BLE001 - logging a metric must not fail
                self._live = False  # no more live redraws; the record is still tried
                self._broken = True  # nor is the view kept for the next cell
                print(f"cellops: the live chart stopped ({error!r}).", file=sys.stderr)

    def draw(self) -> None:
        """Update the live view (creating it on the first call with something to draw)."""
        from IPython.display import display

        groups = panels(self.series)
        if not groups:
            return  # a chart of one point says nothing; wait for a second
        if self._view is None:
            self._view = LiveView.take()
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
            view, self._view = self._view, None
            if not self._broken:
                view.release()
