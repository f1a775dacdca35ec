"""A live metric chart for a ``%%track`` cell: SVG lines, redrawn at most once a second.

The chart is plain HTML/SVG built in Python (no JavaScript build, no matplotlib), so a
redraw costs about a millisecond; between redraws logging a metric costs one list
append. It appears only once the cell logs a metric.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
MAX_POINTS = 300


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    pts = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    if len(pts) > MAX_POINTS:  # keep the shape, drop density
        stride = len(pts) / MAX_POINTS
        pts = [pts[int(j * stride)] for j in range(MAX_POINTS)] + [pts[-1]]
    return pts


def svg_lines(title: str, lines: dict[str, list[tuple[int, float]]], width: int = 420,
              height: int = 140) -> str:
    """One SVG chart of ``title`` with a line per label (steps on x, values on y)."""
    series = {label: _thin(points) for label, points in lines.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y0 == y1:
        y0, y1 = y0 - 1, y1 + 1
    sx = lambda x: 34 + (x - x0) / ((x1 - x0) or 1) * (width - 44)  # noqa: E731
    sy = lambda y: 10 + (1 - (y - y0) / (y1 - y0)) * (height - 32)  # noqa: E731
    out = [f"<svg width='{width}' height='{height}' style='margin-right:8px'>",
           f"<text x='0' y='14' font-size='9'>{y1:.3g}</text>",
           f"<text x='0' y='{height - 22}' font-size='9'>{y0:.3g}</text>"]
    legend = []
    for i, (label, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{line}'/>")
        last = f" {pts[-1][1]:.4g} (step {pts[-1][0]})" if len(series) == 1 else ""
        legend.append(f"<tspan fill='{colour}'>{html.escape(label)}{last}</tspan> ")
    out.append(f"<text x='34' y='{height - 6}' font-size='11'>"
               f"{html.escape(title) + ': ' if len(series) > 1 else ''}{''.join(legend)}</text></svg>")
    return "".join(out)


def svg_chart(series: dict[str, list[tuple[int, float]]]) -> str:
    """One small chart per metric key (up to 6), side by side."""
    return ("<div class='cellops-live'>"
            + "".join(svg_lines(key, {key: pts}) for key, pts in list(series.items())[:6])
            + "</div>")


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
        if self._dirty and self._handle is not None:
            self.draw()

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
