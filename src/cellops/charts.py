"""Charts for notebook outputs.

Every chart is a :class:`Chart`: a plotly figure written as plain JSON (rendered by
plotly's JupyterLab extension and by VS Code: hover values, zoom, legend toggles, and
log-scale and smoothing buttons that work in the browser with no kernel) together with
the same chart as inline SVG (axes, gridlines, a ``<title>`` hover on every point,
JupyterLab colour variables) for nbviewer, GitHub and nbconvert, which have no plotly
renderer. :class:`Report` shows several HTML parts and charts as consecutive outputs.
The live ``%%track`` chart (:mod:`cellops.widgets.live`) is bqplot while the cell runs
and becomes a :class:`Chart` when it ends. docs/architecture.md says why these
libraries.
"""

from __future__ import annotations

import html
import math
import os
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

__all__ = ["OUTPUT_MARK", "Chart", "Report", "bar_figure", "bars", "drop_cached_pictures", "ema",
           "line_chart", "line_figure", "lines", "metric_groups", "parallel", "parallel_figure",
           "tick_label"]

COLOURS = ["var(--jp-brand-color1, #1976d2)", "var(--jp-warn-color1, #f57c00)",
           "var(--jp-success-color1, #388e3c)", "var(--jp-error-color1, #d32f2f)",
           "var(--jp-info-color1, #0097a7)", "var(--jp-mirror-editor-operator-color, #7800c2)"]
TEXT = "var(--jp-ui-font-color1, #333)"
MUTED = "var(--jp-ui-font-color2, #777)"
GRID = "var(--jp-border-color2, #ddd)"
BAD = "var(--jp-error-color1, #d32f2f)"


def tick_label(v: float) -> str:
    """A value as an axis tick or bin edge reads: three significant digits (48,400, not
    4.84e+04), exponents for the huge and the tiny."""
    if v == 0:
        return "0"
    rounded = float(f"{v:.3g}")
    if abs(rounded) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.2e}"
    if abs(rounded) >= 1000:
        return f"{rounded:,.0f}"
    return f"{v:.3g}"


def _multiples(lo: float, hi: float, step: float) -> list[float]:
    """The multiples of ``step`` within ``[lo, hi]``, as the decimals they stand for
    (0.3, not 0.30000000000000004)."""
    first = math.ceil(lo / step)
    return [float(f"{(first + i) * step:.12g}")
            for i in range(int((hi - first * step) / step + 1e-9) + 1)]


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """At most ``n`` intervals at a round step (the SVG charts' ticks), and never fewer
    than three ticks (0.3 and 0.4 alone over 0.21-0.42 say too little: 0.25, 0.3, ...)."""
    if hi <= lo:
        return [lo]
    base = 10 ** math.floor(math.log10((hi - lo) / n))
    steps = [base * m for m in (1, 2, 5, 10)]
    i = next(i for i, step in enumerate(steps) if (hi - lo) / step <= n + 1e-9)
    ticks = _multiples(lo, hi, steps[i])
    while len(ticks) < 3 and i > 0:
        i -= 1
        ticks = _multiples(lo, hi, steps[i])
    return ticks


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` ticks over ``[lo, hi]`` at a round step (1, 2 or 5 times a power
    of ten, the one nearest to a ``count``-th of the range); empty for an empty range (an
    axis then picks its own)."""
    if not hi > lo:
        return []
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs(math.log(st / raw)))
    return _multiples(lo, hi, step)


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis over ``[lo, hi]`` (both > 0): 1, 2 and 5 times the powers of
    ten, only the powers over more than three decades, every digit within a narrow
    range; empty where even that leaves fewer than two (an axis then picks its own)."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for digits in (((1,),) if last - first > 3 else ()) + ((1, 2, 5), range(1, 10)):
        ticks = [t for e in range(first, last + 1) for d in digits
                 if lo <= (t := float(f"{d}e{e}")) <= hi]  # 0.6, not 6 * 0.1
        if len(ticks) >= 2:
            return ticks
    return []


def _tick_labels(ticks: list[float]) -> list[str]:
    """Tick labels with as many decimals as the step needs (0.85, 0.9, 0.95 — never two
    ticks that read the same)."""
    if len(ticks) < 2:
        return [tick_label(t) for t in ticks]
    step = ticks[1] - ticks[0]
    big = max(abs(t) for t in ticks)
    if big >= 1e6 or step < 1e-4:
        return [tick_label(t) for t in ticks]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{t:,.{decimals}f}" for t in ticks]


def _frame_text(series: dict[str, object], y_label: str, left: int, middle: float,
                height: int) -> str:
    """The y-axis label, the legend (a swatch per series) and the closing tag."""
    out = [f"<text x='10' y='{middle:.0f}' fill='{MUTED}' transform='rotate(-90 10 {middle:.0f})' "
           f"text-anchor='middle'>{html.escape(y_label)}</text>"]
    x = left
    for j, name in enumerate(series):
        out.append(f"<rect x='{x}' y='{height - 10}' width='9' height='9' "
                   f"fill='{COLOURS[j % len(COLOURS)]}'/><text x='{x + 12}' y='{height - 2}' "
                   f"fill='{TEXT}'>{html.escape(name)}</text>")
        x += 16 + 7 * len(name)
    return "".join(out) + "</svg>"


def bars(title: str, labels: Sequence[str], series: dict[str, Sequence[float]], *,
         y_label: str = "share of rows", width: int = 380, height: int = 170,
         percent: bool = True) -> str:
    """Grouped bars: one group per label (a bin or category), one bar per series."""
    left, right, top, bottom = 44, 8, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for vs in series.values() for v in vs if v == v), default=0.0) or 1.0
    n = max(len(labels), 1)
    group = plot_w / n
    bar = max(group / (len(series) + 0.6), 1.0)
    out = [f"<svg class='cellops-chart' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(title, quote=True)}' style='font:10px sans-serif'>",
           f"<text x='{left}' y='13' fill='{TEXT}' font-weight='600'>{html.escape(title)}</text>"]
    ticks = _ticks(0, peak)
    for t, text in zip(ticks, _tick_labels(ticks)):
        y = top + plot_h * (1 - t / peak)
        out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='{GRID}'/><text x='{left - 4}' y='{y + 3:.1f}' text-anchor='end' "
                   f"fill='{MUTED}'>{text}</text>")
    for i, label in enumerate(labels):
        for j, (name, values) in enumerate(series.items()):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * (v / peak) if v == v else 0
            x = left + i * group + 0.3 * bar + j * bar
            out.append(f"<rect x='{x:.1f}' y='{top + plot_h - h:.1f}' width='{bar * 0.92:.1f}' "
                       f"height='{h:.1f}' fill='{COLOURS[j % len(COLOURS)]}' opacity='0.85'>"
                       f"<title>{html.escape(name)} · {html.escape(str(label))}: "
                       f"{f'{v:.2%}' if percent else tick_label(v)}</title>"
                       "</rect>")
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        x = left + (i + 0.5) * group
        out.append(f"<text x='{x:.1f}' y='{top + plot_h + 12}' text-anchor='middle' "
                   f"fill='{MUTED}'>{html.escape(str(labels[i])[:12])}</text>")
    out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
               f"stroke='{MUTED}'/>")
    out.append(_frame_text(series, y_label, left, top + plot_h / 2, height))
    return "".join(out)


def lines(title: str, series: dict[str, Sequence[tuple[float, float | None]]], *,
          x_kind: str = "step", bound: float | None = None, y_label: str = "",
          from_zero: bool = False, width: int = 420, height: int = 170) -> str:
    """Lines of ``(x, y)`` points, one per series, with an optional dashed bound line.

    ``x_kind``: ``"step"`` (numbers), ``"time"`` (epoch milliseconds, labelled in UTC) or
    ``"window"`` (window numbers). ``from_zero`` starts the y axis at 0 (shares, counts).
    """
    left, right, top, bottom = 48, 10, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    clean = {name: [(float(x), float(y)) for x, y in pts
                    if x is not None and y is not None and y == y and math.isfinite(y)]
             for name, pts in series.items()}
    clean = {k: v for k, v in clean.items() if v}
    ys = [y for pts in clean.values() for _, y in pts]
    if bound is not None:
        ys.append(bound)
    xs = [x for pts in clean.values() for x, _ in pts]
    if not xs:
        return ""
    lo, hi = min(ys), max(ys)
    if from_zero:
        lo = min(lo, 0.0)
    if lo == hi:
        lo, hi = (0.0, 2 * hi) if hi > 0 else (lo - 0.5, hi + 0.5)
    pad = (hi - lo) * 0.08
    lo, hi = (lo if from_zero and lo == 0 else lo - pad), hi + pad
    x0, x1 = min(xs), max(xs)
    sx = (lambda x: left + (x - x0) / (x1 - x0) * plot_w) if x1 > x0 else (lambda x: left + plot_w / 2)
    sy = lambda v: top + plot_h * (1 - (v - lo) / (hi - lo))  # noqa: E731
    out = [f"<svg class='cellops-chart' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(title, quote=True)}' style='font:10px sans-serif'>",
           f"<text x='{left}' y='13' fill='{TEXT}' font-weight='600'>{html.escape(title)}</text>"]
    ticks = _ticks(lo, hi)
    for t, text in zip(ticks, _tick_labels(ticks)):
        y = sy(t)
        out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='{GRID}'/><text x='{left - 4}' y='{y + 3:.1f}' text-anchor='end' "
                   f"fill='{MUTED}'>{text}</text>")
    if x_kind == "time":
        for t in (x0, x1) if x1 > x0 else (x0,):
            out.append(f"<text x='{sx(t):.1f}' y='{top + plot_h + 12}' text-anchor="
                       f"'{'start' if t == x0 and x1 > x0 else 'end'}' fill='{MUTED}'>"
                       f"{_when(t, '%m-%d %H:%M')}</text>")
    else:
        xt = [t for t in _ticks(x0, x1, 5) if x0 <= t <= x1] if x1 > x0 else [x0]
        if x_kind == "window" or all(float(x).is_integer() for x in xs):
            xt = [t for t in xt if float(t).is_integer()] or [x0]
        for t, text in zip(xt, _tick_labels(xt)):
            out.append(f"<line x1='{sx(t):.1f}' x2='{sx(t):.1f}' y1='{top}' y2='{top + plot_h}' "
                       f"stroke='{GRID}' stroke-dasharray='2 3'/><text x='{sx(t):.1f}' "
                       f"y='{top + plot_h + 12}' text-anchor='middle' fill='{MUTED}'>{text}</text>")
        out.append(f"<text x='{left + plot_w}' y='{height - 2}' text-anchor='end' "
                   f"fill='{MUTED}'>{x_kind}</text>")
    out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
               f"stroke='{MUTED}'/>")
    if bound is not None:
        out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{sy(bound):.1f}' "
                   f"y2='{sy(bound):.1f}' stroke='{BAD}' stroke-dasharray='4 3'>"
                   f"<title>bound {tick_label(bound)}</title></line>")
    for j, (name, pts) in enumerate(clean.items()):
        colour = COLOURS[j % len(COLOURS)]
        if len(pts) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.6' "
                       f"points='{path}'/>")
        for x, y in _marked(pts):
            where = (f"window ending {_when(x, '%Y-%m-%d %H:%M UTC')}" if x_kind == "time"
                     else f"{x_kind} {tick_label(x)}")
            out.append(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='{3 if len(pts) <= 20 else 1.6}' "
                       f"fill='{colour}'><title>{html.escape(name)} {tick_label(y)} · {where}"
                       "</title></circle>")
    out.append(_frame_text(clean, y_label, left, top + plot_h / 2, height))
    return "".join(out)


def _when(ms: float, fmt: str) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime(fmt)


MAX_MARKS = 40  # hover marks per line in the SVG copy: about 130 bytes each


def _marked(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points that get a hover mark: all of a short series; of a long one, evenly
    spaced ones and the last (the line still draws every point)."""
    if len(pts) <= MAX_MARKS:
        return pts
    stride = len(pts) / MAX_MARKS
    return [pts[int(i * stride)] for i in range(MAX_MARKS)] + [pts[-1]]


SPLITS = ("train", "training", "val", "valid", "validation", "test", "eval", "dev")


def metric_groups(keys: Iterable[str]) -> dict[str, list[str]]:
    """Metric names that belong on one chart: the same name with a split prefix or suffix
    (``train_loss``, ``val_loss`` -> ``loss``; ``acc/train``, ``acc/val`` -> ``acc``).
    A name alone in its group keeps its own chart; order of first appearance is kept."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        base = key
        for sep in ("_", ".", "/", "-"):
            head, _, tail = key.partition(sep)
            if head.lower() in SPLITS and tail:
                base = tail
                break
            head, _, tail = key.rpartition(sep)
            if tail.lower() in SPLITS and head:
                base = head
                break
        groups.setdefault(base, []).append(key)
    out: dict[str, list[str]] = {}
    for base, members in groups.items():
        if len(members) > 1:
            out[base] = members
        else:
            out[members[0]] = members
    return out


def parallel(title: str, axes: dict[str, Sequence[object]], colour_by: Sequence[float | None],
             labels: Sequence[str], *, width: int = 640, height: int = 240) -> str:
    """Parallel coordinates: one vertical axis per key of ``axes`` (numbers on a linear
    scale, anything else as evenly spaced categories), one line per run through its
    values, coloured by ``colour_by`` (the metric, which is also the last axis) from the
    theme's blue (low) to orange (high); hovering a line names the run and its values."""
    left, right, top, bottom = 30, 60, 30, 26
    names = list(axes)
    if len(names) < 2 or not labels:
        return ""
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (len(names) - 1)

    def scale(values: Sequence[object]) -> tuple[Any, list[str], list[float]]:
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                and v == v]
        if len(nums) == sum(v is not None for v in values) and nums:
            lo, hi = min(nums), max(nums)
            span = (hi - lo) or 1.0
            ticks = _ticks(lo, hi, 3) if hi > lo else [lo]
            return (lambda v: None if v is None else top + plot_h * (1 - (v - lo) / span)), \
                _tick_labels(ticks), [top + plot_h * (1 - (t - lo) / span) for t in ticks]
        cats = sorted({str(v) for v in values if v is not None})
        pos = {c: top + plot_h * (1 - (i / (len(cats) - 1) if len(cats) > 1 else 0.5))
               for i, c in enumerate(cats)}
        return (lambda v: None if v is None else pos[str(v)]), cats, [pos[c] for c in cats]

    scales = {n: scale(axes[n]) for n in names}
    metric = [v for v in colour_by if v is not None]
    lo, hi = (min(metric), max(metric)) if metric else (0.0, 1.0)
    out = [f"<svg class='cellops-chart cellops-parallel' width='{width}' height='{height}' "
           f"role='img' aria-label='{html.escape(title, quote=True)}' style='font:10px sans-serif'>",
           f"<text x='{left}' y='13' fill='{TEXT}' font-weight='600'>{html.escape(title)}</text>"]
    for i, n in enumerate(names):
        x = left + i * step
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + plot_h}' stroke='{MUTED}'/>"
                   f"<text x='{x:.1f}' y='{height - 8}' text-anchor='middle' fill='{TEXT}'>"
                   f"{html.escape(n[:18])}</text>")
        _, tick_text, tick_y = scales[n]
        for text, y in zip(tick_text, tick_y):
            out.append(f"<text x='{x + 3:.1f}' y='{y + 3:.1f}' fill='{MUTED}'>"
                       f"{html.escape(str(text)[:12])}</text>")
    for r, label in enumerate(labels):
        ys = [scales[n][0](axes[n][r]) for n in names]
        pts = [(left + i * step, y) for i, y in enumerate(ys) if y is not None]
        m = colour_by[r]
        share = 0.5 if m is None or hi == lo else (m - lo) / (hi - lo)
        colour = (f"color-mix(in srgb, {COLOURS[1]} {share * 100:.0f}%, {COLOURS[0]})"
                  if m is not None else MUTED)
        values = ", ".join(f"{n}={tick_label(v) if isinstance(v, float) else v}"
                           for n, v in zip(names, (axes[n][r] for n in names)))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' opacity='0.85' "
                   f"points='{path}'><title>{html.escape(label)}: {html.escape(values)}</title>"
                   "</polyline>")
    out.append("</svg>")
    return "".join(out)


# --- Interactive figures -------------------------------------------------------------------
# The same charts as plotly figures, built as plain JSON (no plotly import in the kernel) and
# rendered by plotly's own JupyterLab extension (installed with the ``plotly`` package; VS
# Code renders the mime type natively): hover values, zoom, legend toggles, and — in the
# browser, with no kernel needed — a log-scale toggle and smoothing buttons. A ``Chart``
# carries the figure and the SVG above side by side, so viewers without plotly (nbviewer,
# GitHub, nbconvert) show the SVG.

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Plotly draws with fixed colours, not CSS variables: a mid grey ink and translucent grid
# read on JupyterLab's light and dark backgrounds alike (the figure's background is clear).
# The ink of every text in a plotly figure. Plotly writes colours inline, not as CSS
# variables, so no one grey reads at 4.5:1 on both JupyterLab themes; this one is also a
# mark: cellops' stylesheet gives text drawn in exactly rgb(122, 122, 123) the theme's text
# colour (see labextension/style/base.css). Elsewhere (VS Code) it stays a mid grey.
INK = "#7a7a7b"
GRIDLINE = "rgba(128,128,128,0.22)"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#8c564b",
           "#e377c2", "#bcbd22", "#7f7f7f"]
BOUND = "#d62728"
SMOOTHING = (0.6, 0.9)  # the weights of the "smooth" and "smoother" buttons
MIN_SMOOTH_POINTS = 20  # a line shorter than this is never smoothed
MAX_FIGURE_POINTS = 1000


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (the first points are not
    pulled towards 0): ``weight`` 0 is the raw series, 0.9 a heavy smoothing."""
    out, last, n = [], 0.0, 0
    for v in values:
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n) if weight < 1 else v)
    return out


def thin(points: Sequence[tuple[float, float]], limit: int = MAX_FIGURE_POINTS
         ) -> list[tuple[float, float]]:
    """Evenly spaced points of a long series, always with its last one (the shape stays;
    a chart cannot show more points than it has pixels)."""
    if len(points) <= limit:
        return list(points)
    stride = len(points) / limit
    return [points[int(i * stride)] for i in range(limit)] + [points[-1]]


FIGURE_DIGITS = 6  # significant digits of the values a figure holds


def short(values: Sequence[float], digits: int = FIGURE_DIGITS) -> list[float]:
    """``values`` (finite) rounded to ``digits`` significant digits, as the floats nearest
    to those decimals: they print short (``0.972028``, not ``0.9720279720279721``), so a
    figure saved in a notebook is about half the size and half the JSON encoding time,
    and no chart can show the difference."""
    import numpy as np

    a = np.asarray(values, dtype=float)
    if not len(a):
        return []
    with np.errstate(divide="ignore"):
        shift = digits - 1 - np.floor(np.log10(np.abs(a)))
    shift = np.where(np.isfinite(shift), shift, 0)  # 0 stays 0
    up = np.clip(shift, 0, 300)  # 10.0 ** n is exact up to 1e22 (values from 1e-17 on)
    down = np.clip(-shift, 0, 300)
    # k / 10**n with k and 10**n exact: the division rounds once, to the nearest float.
    return (np.round(a * 10.0 ** up / 10.0 ** down) * 10.0 ** down / 10.0 ** up).tolist()


def _finite(points: Iterable[tuple[Any, Any]]) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in points
            if x is not None and y is not None and y == y and math.isfinite(y)]


def _axis_names(i: int) -> tuple[str, str, str, str]:
    """Layout keys and trace references of subplot ``i``: ('xaxis', 'yaxis', 'x', 'y'),
    then ('xaxis2', 'yaxis2', 'x2', 'y2'), ..."""
    n = "" if i == 0 else str(i + 1)
    return f"xaxis{n}", f"yaxis{n}", f"x{n}", f"y{n}"


def _base_layout(height: int) -> dict[str, Any]:
    return {"height": height, "autosize": True, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"color": INK, "size": 11,
                     "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
            "margin": {"l": 56, "r": 16, "t": 64, "b": 44},
            "hoverlabel": {"namelength": -1},
            "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02,
                       "yanchor": "bottom", "bgcolor": "rgba(0,0,0,0)"}}


def _menu(buttons: list[dict[str, Any]], x: float, label: str, y: float = 1.02) -> dict[str, Any]:
    return {"type": "buttons", "direction": "right", "x": x, "xanchor": "left", "y": y,
            "yanchor": "bottom", "pad": {"r": 4, "t": 0, "b": 0, "l": 0}, "showactive": True,
            # Plotly draws the chosen button near-white whatever the figure says; cellops'
            # stylesheet makes it a grey the dark theme's light text reads on.
            "active": 0, "bgcolor": "rgba(128,128,128,0.12)", "bordercolor": GRIDLINE,
            "font": {"color": INK, "size": 10}, "name": label, "buttons": buttons}


def line_figure(panels: dict[str, dict[str, Sequence[tuple[Any, Any]]]], *,
                x_kind: str = "step", bounds: dict[str, float] | None = None,
                y_labels: dict[str, str] | None = None, from_zero: Iterable[str] = (),
                columns: int | None = None) -> dict[str, Any]:
    """A plotly figure of line charts: one subplot per key of ``panels`` (its title), one
    line per series of ``(x, y)`` points in it. A series name used in several panels keeps
    one colour and one legend entry (runs across metrics in ``%compare``). ``x_kind`` is
    ``"step"``, ``"window"`` or ``"time"`` (epoch milliseconds, a date axis); ``bounds``
    draws a dashed threshold on a panel; ``from_zero`` names panels whose y axis starts
    at 0. Buttons switch every y axis between linear and log scale and, when a line has
    20 points or more, smooth the lines (exponential moving average) — all in the browser.
    """
    bounds, y_labels, zero = bounds or {}, y_labels or {}, set(from_zero)
    clean = {title: {name: _finite(thin(pts)) for name, pts in series.items()}
             for title, series in panels.items()}
    clean = {t: {n: p for n, p in s.items() if p} for t, s in clean.items()}
    clean = {t: s for t, s in clean.items() if s}
    n = max(len(clean), 1)
    cols = columns or (1 if n == 1 else 2 if n in (2, 4) else 3)
    rows = math.ceil(n / cols)
    row_h = 250
    height = row_h * rows + 110
    layout = _base_layout(height)
    # Buttons and legend sit in a band above the panels' titles (paper units from pixels).
    layout["margin"] = {**layout["margin"], "t": 84}
    band = 1 + 30 / (height - 84 - layout["margin"]["b"])
    layout["legend"]["y"] = band
    gap_x, gap_y = 0.07, min(0.14, 0.3 / rows) if rows > 1 else 0.0
    cell_w, cell_h = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    colours: dict[str, str] = {}
    data: list[dict[str, Any]] = []
    smoothable: list[int] = []
    annotations = []
    for i, (title, series) in enumerate(clean.items()):
        r, c = divmod(i, cols)
        xa, ya, xref, yref = _axis_names(i)
        x0 = c * (cell_w + gap_x)
        y1 = 1 - r * (cell_h + gap_y)
        layout[xa] = {"domain": [x0, x0 + cell_w], "anchor": yref, "gridcolor": GRIDLINE,
                      "zeroline": False, "showline": True, "linecolor": GRIDLINE,
                      "ticks": "outside", "tickcolor": GRIDLINE,
                      "title": {"text": "" if x_kind == "time" else x_kind, "standoff": 4}}
        if x_kind == "time":
            layout[xa]["type"] = "date"
        layout[ya] = {"domain": [max(y1 - cell_h, 0), y1], "anchor": xref,
                      "gridcolor": GRIDLINE, "zeroline": False, "showline": True,
                      "linecolor": GRIDLINE, "ticks": "outside", "tickcolor": GRIDLINE,
                      "title": {"text": y_labels.get(title, ""), "standoff": 4}}
        if title in zero:
            layout[ya]["rangemode"] = "tozero"
        # Every panel is titled, just above its plot.
        annotations.append({"text": f"<b>{html.escape(title)}</b>", "showarrow": False,
                            "xref": "paper", "yref": "paper", "x": x0 + cell_w / 2,
                            "y": y1, "xanchor": "center", "yanchor": "bottom",
                            "font": {"size": 12}})
        for name, pts in series.items():
            first = name not in colours
            colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
            xs, ys = [p[0] for p in pts], short([p[1] for p in pts])
            if len(pts) >= MIN_SMOOTH_POINTS:
                smoothable.append(len(data))
            data.append({"type": "scatter", "mode": "lines+markers" if len(pts) <= 30 else "lines",
                         "name": name, "legendgroup": name, "showlegend": first,
                         "x": xs, "y": ys, "xaxis": xref, "yaxis": yref,
                         "line": {"color": colour, "width": 1.8}, "marker": {"size": 5},
                         "hovertemplate": f"{html.escape(name)}: %{{y:.4~g}}<extra></extra>"})
        if title in bounds:
            xs_all = [p[0] for pts in series.values() for p in pts]
            data.append({"type": "scatter", "mode": "lines", "name": "bound",
                         "legendgroup": "bound", "showlegend": "bound" not in colours,
                         "x": [min(xs_all), max(xs_all)], "y": [bounds[title]] * 2,
                         "xaxis": xref, "yaxis": yref, "hoverinfo": "skip",
                         "line": {"color": BOUND, "width": 1.2, "dash": "dash"}})
            colours.setdefault("bound", BOUND)
    layout["annotations"] = annotations
    layout["hovermode"] = "x unified" if n == 1 else "x"
    y_axes = [_axis_names(i)[1] for i in range(len(clean))]
    # On a log axis plotly labels the ticks between powers of ten with one small digit
    # ("2" for 0.2); a tick format makes them values. Linear goes back to plotly's own.
    menus = [_menu([{"label": "linear", "method": "relayout",
                     "args": [{k: v for a in y_axes for k, v in
                               ((f"{a}.type", "linear"), (f"{a}.tickformat", ""))}]},
                    {"label": "log", "method": "relayout",
                     "args": [{k: v for a in y_axes for k, v in
                               ((f"{a}.type", "log"), (f"{a}.tickformat", ".2~g"))}]}],
                   0.0, "scale", band)]
    if smoothable:
        raw = [data[i]["y"] for i in smoothable]
        buttons = [{"label": "raw", "method": "restyle", "args": [{"y": raw}, smoothable]}]
        for label, w in zip(("smooth", "smoother"), SMOOTHING):
            buttons.append({"label": label, "method": "restyle",
                            "args": [{"y": [short(ema(y, w)) for y in raw]}, smoothable]})
        menus.append(_menu(buttons, 0.16 if cols > 1 else 0.12, "smoothing", band))
    layout["updatemenus"] = menus
    return {"data": data, "layout": layout,
            "config": {"displaylogo": False,
                       "modeBarButtonsToRemove": ["select2d", "lasso2d"]}}


def bar_figure(panels: dict[str, tuple[Any, ...]], *, y_label: str = "share of rows",
               columns: int = 3, percent: bool = True) -> dict[str, Any]:
    """A plotly figure of grouped bars: one subplot per key of ``panels`` (a title), each
    ``(labels, {series: values})`` — e.g. a column's categories with the reference and
    current shares — or ``(labels, {series: values}, edges)`` for the bins of a number
    (``len(labels) + 1`` edges): those are drawn as a histogram on a numeric axis, with a
    few round ticks instead of one label per bin (which plotly rotates and the panel
    clips). A series keeps one colour and one legend entry across the panels. Values are
    shares (axis and hover in %) unless ``percent`` is off."""
    n = max(len(panels), 1)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    height = 220 * rows + 80
    layout = _base_layout(height)
    layout["margin"] = {**layout["margin"], "t": 60, "b": 56}
    layout["barmode"] = "group"
    layout["hovermode"] = "x"
    layout["bargap"] = 0.08
    gap_x, gap_y = 0.06, min(0.2, 0.44 / rows) if rows > 1 else 0.0
    cell_w, cell_h = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    data: list[dict[str, Any]] = []
    colours: dict[str, str] = {}
    annotations = []
    for i, (title, (labels, series, *rest)) in enumerate(panels.items()):
        edges = rest[0] if rest and rest[0] is not None and len(rest[0]) == len(labels) + 1 else None
        r, c = divmod(i, cols)
        xa, ya, xref, yref = _axis_names(i)
        x0, y1 = c * (cell_w + gap_x), 1 - r * (cell_h + gap_y)
        names = [str(v) for v in labels]
        xaxis: dict[str, Any] = {"domain": [x0, x0 + cell_w], "anchor": yref, "showline": True,
                                 "linecolor": GRIDLINE, "tickfont": {"size": 10},
                                 "automargin": True, "ticks": "outside", "tickcolor": GRIDLINE}
        if edges is not None:
            lo_hi = list(zip(edges[:-1], edges[1:]))
            x = [(a + b) / 2 for a, b in lo_hi]
            width = [(b - a) * 0.45 for a, b in lo_hi]  # two bars share a bin
            where = [f"{tick_label(a)} to {tick_label(b)}" for a, b in lo_hi]
            xaxis.update({"type": "linear", "nticks": 5, "tickformat": ".3~g", "tickangle": 0,
                          "zeroline": False, "gridcolor": GRIDLINE})
        else:
            x, width, where = names, None, names
            short_names = [t if len(t) <= 12 else t[:11] + "…" for t in names]
            xaxis.update({"type": "category", "tickangle": -30 if len(names) > 4 else 0,
                          "tickvals": names, "ticktext": short_names})
        layout[xa] = xaxis
        layout[ya] = {"domain": [max(y1 - cell_h, 0), y1], "anchor": xref, "gridcolor": GRIDLINE,
                      "zeroline": False, "rangemode": "tozero",
                      "tickformat": ".0%" if percent else ".3~g",
                      "title": {"text": y_label if c == 0 else "", "standoff": 4}}
        annotations.append({"text": f"<b>{html.escape(title)}</b>", "showarrow": False,
                            "xref": "paper", "yref": "paper", "x": x0 + cell_w / 2, "y": y1,
                            "xanchor": "center", "yanchor": "bottom", "font": {"size": 12}})
        for j, (name, values) in enumerate(series.items()):
            first = name not in colours
            colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
            bar: dict[str, Any] = {
                "type": "bar", "name": name, "legendgroup": name, "showlegend": first,
                "x": x, "xaxis": xref, "yaxis": yref, "customdata": where,
                "y": [None if v != v else float(v) for v in values],
                "marker": {"color": colour, "opacity": 0.85},
                "hovertemplate": f"{html.escape(name)}: %{{y:{'.1%' if percent else '.4~g'}}} · "
                                 "%{customdata}<extra></extra>"}
            if width is not None:  # side by side within the bin, as grouped bars are
                bar["width"] = width
                bar["offset"] = [-w + j * w for w in width] if len(series) == 2 else None
                if bar["offset"] is None:
                    del bar["offset"]
            data.append(bar)
    layout["annotations"] = annotations
    return {"data": data, "layout": layout, "config": {"displaylogo": False}}


def parallel_figure(axes: dict[str, Sequence[object]], colour_by: Sequence[float | None],
                    labels: Sequence[str], metric: str) -> dict[str, Any]:
    """Parallel coordinates as a plotly figure: a first axis naming the runs, one axis per
    key of ``axes`` (numbers on a linear scale; text, or numbers some runs lack, as
    categories with "—" for missing), lines coloured by ``colour_by`` (the metric, also
    the last axis). Drag along an axis to keep only the runs in a range (W&B's sweep
    view). Runs without the metric are left out: they have no colour."""
    keep = [i for i, v in enumerate(colour_by) if v is not None]

    def dimension(label: str, values: list[object]) -> dict[str, Any]:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return {"label": label, "values": [float(v) for v in values],  # type: ignore[arg-type]
                    "tickformat": ".4~g"}
        text = ["—" if v is None else tick_label(v) if isinstance(v, float) else str(v)
                for v in values]
        cats = sorted(set(text), key=lambda t: (t == "—", _sort_key(t)))
        code = {c: i for i, c in enumerate(cats)}
        return {"label": label, "values": [code[t] for t in text],
                "tickvals": list(range(len(cats))),
                "ticktext": [_clip(t, RUN_LABEL_CHARS if label == "run" else 18) for t in cats]}

    dims = [dimension("run", [labels[i] for i in keep])]
    dims += [dimension(name, [values[i] for i in keep]) for name, values in axes.items()]
    metric_values = [float(colour_by[i]) for i in keep]  # type: ignore[arg-type]
    layout = _base_layout(360)
    # The run names are the first axis's ticks, written left of it: the margin fits them
    # (about 6 px a character at 10 px).
    longest = max((len(t) for t in dims[0]["ticktext"]), default=4)
    layout["margin"] = {"l": max(60, min(16 + 6 * longest, 260)), "r": 60, "t": 60, "b": 30}
    return {"data": [{"type": "parcoords", "dimensions": dims,
                      "line": {"color": metric_values, "colorscale": "Viridis",
                               "showscale": True,
                               "colorbar": {"title": {"text": metric}, "thickness": 12}},
                      # No text shadow: plotly's default halo is white, a smudge on dark themes.
                      "labelfont": {"color": INK, "size": 11, "shadow": "none"},
                      "tickfont": {"color": INK, "size": 10, "shadow": "none"},
                      "rangefont": {"color": INK, "size": 9, "shadow": "none"}}],
            "layout": layout, "config": {"displaylogo": False}}


RUN_LABEL_CHARS = 40


def _clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters; a label ending in a run's short id
    ("name (1a2b3c4d)") keeps the id and shortens the name."""
    if len(text) <= limit:
        return text
    head, sep, tail = text.rpartition(" (")
    if sep and tail.endswith(")") and len(tail) < limit - 4:
        return head[:limit - len(tail) - 3] + "…" + sep + tail
    return text[:limit - 1] + "…"


def _sort_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


OUTPUT_MARK = "cellops"  # the output metadata key that marks a cellops chart


def drop_cached_pictures(model: dict[str, Any], **_: Any) -> None:
    """A Jupyter server pre-save hook (registered by cellops' server extension): remove the
    PNG that plotly's JupyterLab renderer adds to every figure it draws (``image/png`` in
    the output, 40-80 KB a chart) from the outputs of cellops charts, which already carry
    their static copy as SVG text. An output marked ``png`` (the kernel had
    ``CELLOPS_CHART_PNG=1``) keeps it; other libraries' outputs are left alone."""
    content = model.get("content")
    if model.get("type") != "notebook" or not isinstance(content, dict):
        return
    for cell in content.get("cells") or []:
        for output in (cell.get("outputs") or []) if isinstance(cell, dict) else []:
            if not isinstance(output, dict):
                continue
            mark = (output.get("metadata") or {}).get(OUTPUT_MARK)
            data = output.get("data")
            if (isinstance(mark, dict) and mark.get("chart") and not mark.get("png")
                    and isinstance(data, dict) and "text/html" in data):
                data.pop("image/png", None)


class Chart:
    """A chart for a notebook output: the plotly ``figure`` (interactive wherever plotly's
    renderer is: JupyterLab, Notebook 7, VS Code — also in a saved notebook reopened
    without a kernel) and the same chart as inline ``svg`` (shown by nbviewer, GitHub and
    nbconvert, which have no plotly renderer)."""

    def __init__(self, figure: dict[str, Any], svg: str, title: str = "chart") -> None:
        self.figure, self.svg, self.title = figure, svg, title

    def _repr_mimebundle_(self, include: Any = None,
                          exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        mark: dict[str, Any] = {"chart": self.title}
        if os.environ.get("CELLOPS_CHART_PNG", "").strip().lower() in ("1", "true", "yes"):
            mark["png"] = True
        return ({PLOTLY_MIME: self.figure, "text/html": self.svg,
                 "text/plain": f"<cellops chart: {self.title}>"}, {OUTPUT_MARK: mark})

    def _repr_html_(self) -> str:
        return self.svg

    def __bool__(self) -> bool:
        return bool(self.figure.get("data"))


class Report:
    """Several outputs shown one after another — HTML fragments and :class:`Chart` s — so
    each chart gets an output of its own (a plotly figure needs one). ``html()`` is the
    whole report as one static fragment (charts as SVG)."""

    def __init__(self, parts: Iterable[str | Chart]) -> None:
        self.parts = [p for p in parts if p]

    def html(self) -> str:
        return "".join(p.svg if isinstance(p, Chart) else p for p in self.parts)

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        for part in self.parts:
            display(part if isinstance(part, Chart) else HTML(part))


def line_chart(panels: dict[str, dict[str, Sequence[tuple[Any, Any]]]], *,
               x_kind: str = "step", bounds: dict[str, float] | None = None,
               y_labels: dict[str, str] | None = None, from_zero: Iterable[str] = (),
               title: str = "") -> Chart:
    """:func:`line_figure` and its SVG fallback (one :func:`lines` chart per panel) as one
    :class:`Chart`."""
    bounds, y_labels, zero = bounds or {}, y_labels or {}, set(from_zero)
    # Thinned, then cleaned, once: a long series is not walked point by point per rendering.
    panels = {t: {n: _finite(thin(p)) for n, p in series.items()} for t, series in panels.items()}
    svgs = [lines(t, {n: thin(p, 500) for n, p in series.items()}, x_kind=x_kind,
                  bound=bounds.get(t), y_label=y_labels.get(t, ""), from_zero=t in zero)
            for t, series in panels.items()]
    svg = ("<div class='cellops-charts' style='display:flex;flex-wrap:wrap;gap:8px'>"
           + "".join(svgs) + "</div>") if any(svgs) else ""
    figure = line_figure(panels, x_kind=x_kind, bounds=bounds, y_labels=y_labels,
                         from_zero=zero)
    return Chart(figure, svg, title or ", ".join(panels))
