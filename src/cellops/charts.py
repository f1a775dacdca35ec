"""Charts for notebook outputs, drawn as inline SVG: axes with tick labels and gridlines, a
legend, and a tooltip (SVG ``<title>``) on every bar and point, coloured with JupyterLab
theme variables that fall back to fixed colours — so a saved notebook, a report or a page
on GitHub still reads, with the same hovers, when it is opened without a kernel or outside
JupyterLab. The live ``%%track`` chart, ``%compare``, drift reports and monitor histories
all draw with these (docs/architecture.md says why SVG from Python for the notebook).
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

__all__ = ["bars", "lines", "metric_groups", "parallel"]

COLOURS = ["var(--jp-brand-color1, #1976d2)", "var(--jp-warn-color1, #f57c00)",
           "var(--jp-success-color1, #388e3c)", "var(--jp-error-color1, #d32f2f)",
           "var(--jp-info-color1, #0097a7)", "var(--jp-mirror-editor-operator-color, #7800c2)"]
TEXT = "var(--jp-ui-font-color1, #333)"
MUTED = "var(--jp-ui-font-color2, #777)"
GRID = "var(--jp-border-color2, #ddd)"
BAD = "var(--jp-error-color1, #d32f2f)"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_labels(ticks: list[float]) -> list[str]:
    """Tick labels with as many decimals as the step needs (0.85, 0.9, 0.95 — never two
    ticks that read the same)."""
    if len(ticks) < 2:
        return [_fmt(t) for t in ticks]
    step = ticks[1] - ticks[0]
    big = max(abs(t) for t in ticks)
    if big >= 1e6 or step < 1e-4:
        return [_fmt(t) for t in ticks]
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
         y_label: str = "share of rows", width: int = 380, height: int = 170) -> str:
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
                       f"<title>{html.escape(name)} · {html.escape(str(label))}: {v:.2%}</title>"
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
                   f"<title>bound {_fmt(bound)}</title></line>")
    for j, (name, pts) in enumerate(clean.items()):
        colour = COLOURS[j % len(COLOURS)]
        if len(pts) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.6' "
                       f"points='{path}'/>")
        for x, y in _marked(pts):
            where = (f"window ending {_when(x, '%Y-%m-%d %H:%M UTC')}" if x_kind == "time"
                     else f"{x_kind} {_fmt(x)}")
            out.append(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='{3 if len(pts) <= 20 else 1.6}' "
                       f"fill='{colour}'><title>{html.escape(name)} {_fmt(y)} · {where}"
                       "</title></circle>")
    out.append(_frame_text(clean, y_label, left, top + plot_h / 2, height))
    return "".join(out)


def _when(ms: float, fmt: str) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime(fmt)


MAX_MARKS = 150


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
        values = ", ".join(f"{n}={_fmt(v) if isinstance(v, float) else v}"
                           for n, v in zip(names, (axes[n][r] for n in names)))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' opacity='0.85' "
                   f"points='{path}'><title>{html.escape(label)}: {html.escape(values)}</title>"
                   "</polyline>")
    out.append("</svg>")
    return "".join(out)
