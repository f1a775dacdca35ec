"""How cellops shows values to people: one number format, durations, byte sizes, status
colours, and the HTML summary of a run. The CLI, the magics, the widgets and ``Run``'s own
``_repr_html_`` all use these, so a value reads the same everywhere.

Colours are JupyterLab CSS variables with a fallback, so notebook HTML follows the light
and dark themes and still reads in a static viewer.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any, Iterable

from .tracking.values import same_value_key  # noqa: F401 - public here: what compare views use

if TYPE_CHECKING:
    from .tracking.run import Run

__all__ = ["STATUS_COLOURS", "format_bytes", "format_duration", "format_number", "run_link",
           "run_summary_html", "same_value_key", "status_badge"]

# Status -> (foreground, background) as theme variables with fallbacks.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "RUNNING": ("var(--jp-info-color0, #0b5394)", "var(--jp-info-color3, #dbe9fb)"),
    "FINISHED": ("var(--jp-success-color0, #17602a)", "var(--jp-success-color3, #d7f2dc)"),
    "FAILED": ("var(--jp-error-color0, #8a1c1c)", "var(--jp-error-color3, #fbdada)"),
    "KILLED": ("var(--jp-warn-color0, #7a4a05)", "var(--jp-warn-color3, #f3e1c7)"),
}
_NEUTRAL = ("var(--jp-ui-font-color1, #333)", "var(--jp-layout-color2, #eee)")


def format_number(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits, thousands separators, whole
    numbers without decimals (``143``, not ``143.0000``), exponents only when huge or tiny;
    NaN as ``NaN``, None as an empty string, text as it is — never read as a number: a run
    id ``386e5045`` or ``00012345`` and a param ``1e3`` print as they were written."""
    if value is None:
        return ""
    if isinstance(value, (bool, str, bytes)):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-4:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"  # 1.234e-5, as the sidebar writes it
    text = f"{value:,.{max(0, digits - 1 - int(math.floor(math.log10(magnitude))))}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``12.4 s``, ``3m 05s``, ``2h 10m``; empty for None."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_bytes(n: int | None) -> str:
    """``812 bytes``, ``2.0 MB`` (powers of 1000, as file managers show them)."""
    if n is None:
        return ""
    if n < 1000:
        return f"{n} byte{'s' if n != 1 else ''}"
    size = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if size < 1000 or unit == "PB":
            return f"{size:.1f} {unit}"
    return f"{n} bytes"


def status_badge(status: str) -> str:
    """An HTML badge for a run status, in the theme's colours."""
    fg, bg = STATUS_COLOURS.get(status, _NEUTRAL)
    return (f"<span style='color:{fg};background:{bg};border-radius:8px;padding:0 6px;"
            f"font-weight:600'>{html.escape(status)}</span>")


def run_link(run_id: str) -> str:
    """A run's short id that, clicked in JupyterLab, opens the run in the cellops sidebar
    (JupyterLab's command linker runs ``cellops:open-run``); elsewhere, plain text."""
    args = html.escape(json.dumps({"runId": run_id}), quote=True)
    return (f"<code data-commandlinker-command='cellops:open-run' data-commandlinker-args='{args}' "
            f"title='Show run {run_id} in the cellops sidebar' style='cursor:pointer;"
            f"text-decoration:underline dotted'>{html.escape(run_id[:8])}</code>")


def run_summary_html(run: Run, *, notes: Iterable[str] = (), metrics: int = 8,
                     details: bool = False) -> str:
    """One line about a run (status, name, id, experiment, duration, key metrics), plus
    its metrics and params as tables when ``details``; ``notes`` are shown in italics."""
    ms = sorted(run.metrics.items())
    shown = ", ".join(f"{html.escape(k)}={format_number(v)}" for k, v in ms[:metrics])
    line = (f"{status_badge(run.status)} <b>{html.escape(run.name or run.kind + ' run')}</b> "
            f"{run_link(run.id)} · {html.escape(run.experiment)} · "
            f"{format_duration(run.duration)}" + (f" · {shown}" if shown and not details else ""))
    parts = [f"<div class='cellops-run' style='font-family:var(--jp-ui-font-family, sans-serif);"
             f"font-size:12px;color:var(--jp-ui-font-color1, inherit)'>{line}"]
    parts += [f"<br><i>{html.escape(n)}</i>" for n in notes]
    if details:
        for title, rows in (("metric", [(k, format_number(v)) for k, v in ms]),
                            ("param", sorted(run.params.items()))):
            if rows:
                body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v)[:80])}</td></tr>"
                               for k, v in rows)
                parts.append(f"<table><tr><th>{title}</th><th>value</th></tr>{body}</table>")
        if run.error:
            parts.append(f"<pre style='color:var(--jp-error-color1, #d62728)'>"
                         f"{html.escape(run.error)}</pre>")
    parts.append("</div>")
    return "".join(parts)
