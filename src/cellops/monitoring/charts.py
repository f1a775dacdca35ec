"""Charts for notebook outputs, drawn as inline SVG: axes with tick labels, a legend, and a
tooltip (SVG ``<title>``) on every bar and point, coloured with JupyterLab theme variables
that fall back to fixed colours — so a saved notebook or report still reads, with the same
hovers, when it is opened without a kernel or outside JupyterLab.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Sequence

COLOURS = ["var(--jp-brand-color1, #1976d2)", "var(--jp-warn-color1, #f57c00)",
           "var(--jp-success-color1, #388e3c)", "var(--jp-error-color1, #d32f2f)"]
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


def lines(title: str, times_ms: Sequence[int], series: dict[str, Sequence[float | None]], *,
          bound: float | None = None, y_label: str = "", from_zero: bool = False,
          by_window: bool = False, width: int = 420, height: int = 170) -> str:
    """Values over windows, with an optional dashed bound line. x is the window's end
    (UTC), or with ``by_window`` the window's number (row windows, which may close seconds
    or weeks apart); ``from_zero`` starts the y axis at 0 (shares, counts)."""
    left, right, top, bottom = 44, 10, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    ys = [v for vs in series.values() for v in vs if v is not None and v == v]
    if bound is not None:
        ys.append(bound)
    if not times_ms or not ys:
        return ""
    lo, hi = min(ys), max(ys)
    if from_zero:
        lo = min(lo, 0.0)
    if lo == hi:
        lo, hi = (0.0, 2 * hi) if hi > 0 else (lo - 0.5, hi + 0.5)
    pad = (hi - lo) * 0.08
    lo, hi = (lo if from_zero and lo == 0 else lo - pad), hi + pad
    xs = list(range(1, len(times_ms) + 1)) if by_window else list(times_ms)
    t0, t1 = min(xs), max(xs)
    sx = (lambda t: left + (t - t0) / (t1 - t0) * plot_w) if t1 > t0 else (lambda t: left + plot_w / 2)
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
    if by_window:
        step = max(1, math.ceil(len(xs) / 8))
        for t in xs[::step]:
            out.append(f"<text x='{sx(t):.1f}' y='{top + plot_h + 12}' text-anchor='middle' "
                       f"fill='{MUTED}'>{t}</text>")
        out.append(f"<text x='{left + plot_w}' y='{height - 2}' text-anchor='end' "
                   f"fill='{MUTED}'>window</text>")
    else:
        for t in (t0, t1) if t1 > t0 else (t0,):
            label = datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%m-%d %H:%M")
            out.append(f"<text x='{sx(t):.1f}' y='{top + plot_h + 12}' text-anchor="
                       f"'{'start' if t == t0 and t1 > t0 else 'end'}' fill='{MUTED}'>{label}</text>")
    out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
               f"stroke='{MUTED}'/>")
    if bound is not None:
        out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{sy(bound):.1f}' "
                   f"y2='{sy(bound):.1f}' stroke='{BAD}' stroke-dasharray='4 3'>"
                   f"<title>bound {_fmt(bound)}</title></line>")
    for j, (name, values) in enumerate(series.items()):
        colour = COLOURS[j % len(COLOURS)]
        pts = [(sx(x), sy(v), x, t, v) for x, t, v in zip(xs, times_ms, values)
               if v is not None and v == v]
        if len(pts) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, *_ in pts)
            out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.6' points='{path}'/>")
        for px, py, x, t, v in pts:
            when = datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            which = f"window {x}, ending {when}" if by_window else f"window ending {when}"
            out.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{colour}'>"
                       f"<title>{html.escape(name)} {_fmt(v)} · {which}</title></circle>")
    out.append(_frame_text(series, y_label, left, top + plot_h / 2, height))
    return "".join(out)
