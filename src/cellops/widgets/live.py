"""A live metric chart for a ``%%track`` cell: SVG lines, redrawn at most once a second.

The chart is plain HTML/SVG built in Python by :mod:`cellops.charts` (axes, gridlines,
hover values, theme colours; no JavaScript build, no matplotlib): a redraw of two
10,000-step series costs about 3 ms, the saved notebook keeps it, and between redraws
logging a metric costs one list append. It appears once a metric has two points.
"""

from __future__ import annotations

import math
import time
from typing import Any

from cellops import charts
from cellops.charts import metric_groups

MAX_POINTS = 300
MAX_CHARTS = 6


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    pts = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    if len(pts) > MAX_POINTS:  # keep the shape, drop density
        stride = len(pts) / MAX_POINTS
        pts = [pts[int(j * stride)] for j in range(MAX_POINTS)] + [pts[-1]]
    return pts


def svg_chart(series: dict[str, list[tuple[int, float]]]) -> str:
    """The live charts: one per metric, or per group of metrics that differ only by a
    split prefix or suffix (``train_loss`` and ``val_loss`` overlaid on one ``loss``
    chart); steps on x, up to six charts side by side."""
    out = []
    for title, keys in list(metric_groups(series).items())[:MAX_CHARTS]:
        lines = {k: _thin(series[k]) for k in keys}
        if not any(len(p) > 1 for p in lines.values()):
            continue
        out.append(charts.lines(title, lines, x_kind="step", y_label=title if len(keys) > 1 else "",
                                width=380, height=170))
    return "<div class='cellops-live' style='display:flex;flex-wrap:wrap;gap:8px'>" + \
        "".join(out) + "</div>"


class LiveChart:
    """Collects a run's metrics as they are logged and redraws a display at most every ``interval`` s."""

    def __init__(self, run: Any, interval: float = 1.0) -> None:
        self.run = run
        self.interval = interval
        self._stop: Any = None
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._handle: Any = None
        self._last = 0.0
        self._dirty = False

    def __enter__(self) -> LiveChart:
        self._stop = self.run.on_metrics(self.on_rows)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._stop is not None:
            self._stop()
        if self._dirty:
            self.draw()  # the final state; also the first draw of a cell that logged fast

    def on_rows(self, rows: list[tuple]) -> None:
        for _, key, step, value, _ts in rows:
            self.series.setdefault(key, []).append((step, value))
        self._dirty = True
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.draw()

    def draw(self) -> None:
        from IPython.display import HTML, display

        if not any(len(v) > 1 for v in self.series.values()):
            return  # a chart of one point says nothing; wait for a second
        content = HTML(svg_chart(self.series))
        if self._handle is None:
            self._handle = display(content, display_id=True)
        else:
            self._handle.update(content)
        self._dirty = False
