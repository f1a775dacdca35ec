"""Model cards written from lineage: what a version is for, where it came from (run,
notebook, code, params, metrics, data), what it takes, what it ran on, and who approved it
where. Other areas add sections when they have something to say (explainability,
fairness, monitoring) with :func:`register_card_section`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..display import format_bytes, format_number
from ..errors import CellopsError
from ..workspaces import workspace
from .audit import audit_log

if TYPE_CHECKING:
    from .versions import ModelVersion

__all__ = ["ModelCard", "card_for", "register_card_section"]

KEY_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "cellops")

# Sections other areas contribute: (title, function of the version returning Markdown or
# None when they have nothing for it). Registered at import of the area, never here.
_SECTIONS: list[tuple[str, Callable[[ModelVersion], str | None] | str]] = []


def register_card_section(title: str, render: Callable[[ModelVersion], str | None] | str) -> None:
    """Add a section to every model card; ``render`` returns Markdown, or None to leave the
    section out for a version (no data yet). ``render`` may be named as ``"module:function"``
    so that its area is imported only when a card is written."""
    _SECTIONS.append((title, render))


@dataclass
class ModelCard:
    """A model card: ``markdown`` (what ``save`` writes); shows as HTML in notebooks."""

    version: ModelVersion
    markdown: str

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.markdown, encoding="utf-8")
        return out

    def html(self) -> str:
        try:
            import mistune

            # escape=True: names, descriptions and params are user text, never markup.
            body = mistune.create_markdown(escape=True, plugins=["table"])(self.markdown)
        except ImportError:  # pragma: no cover - mistune comes with JupyterLab's nbconvert
            body = f"<pre>{html.escape(self.markdown)}</pre>"
        return f"<div class='cellops-model-card'>{body}</div>"

    def summary_html(self) -> str:
        v = self.version
        metrics = _run_metrics(v)
        shown = ", ".join(f"{html.escape(k)}={format_number(m)}" for k, m in list(metrics.items())[:6])
        aliases = " ".join(f"<code>@{html.escape(a)}</code>" for a in v.aliases)
        return (f"<div style='font-family:var(--jp-ui-font-family, sans-serif);font-size:12px'>"
                f"<b>{html.escape(v.name)}</b> version {v.version} {aliases} · "
                f"<code>{html.escape(v.uri)}</code>"
                + (f" · run <code>{v.run_id[:8]}</code>" if v.run_id else "")
                + (f"<br>{shown}" if shown else "")
                + f"<br><span style='opacity:0.7'>Full card: <code>cellops.model_card("
                  f"{html.escape(repr(v.name))}, {v.version})</code></span></div>")

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_html_(self) -> str:
        return self.html()


def _run(v: ModelVersion) -> Any:
    if not v.run_id:
        return None
    from ..tracking.api import get_run

    try:
        return get_run(v.run_id)
    except CellopsError:
        return None


def _run_metrics(v: ModelVersion) -> dict[str, float]:
    run = _run(v)
    return dict(sorted(run.metrics.items())) if run is not None else {}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _event(e: Any) -> str:
    """One line about an alias or approval entry of the audit log."""
    d = e.details
    before, after = (d.get("before") or {}), (d.get("after") or {})
    comment = f": {d['comment']}" if d.get("comment") else ""
    if e.action == "set_alias":
        was = before.get("version")
        return f"{e.object}: {'unset' if was is None else f'v{was}'} -> v{after.get('version')}"
    if e.action == "request_promotion":
        return f"request #{d.get('request')} for v{after.get('version')}"
    if e.action in ("approve", "reject"):
        return f"{e.action}d #{d.get('request')}{comment}"
    return e.object


def card_for(v: ModelVersion) -> ModelCard:
    """The card of a registered version, as Markdown (``cellops.model_card`` looks the
    version up by name and number or alias)."""
    ws = workspace()
    run = _run(v)
    model = ws.store.registry.model(v.name)
    parts = [f"# {v.name} — version {v.version}"]
    if v.aliases:
        parts.append("Aliases: " + ", ".join(f"`{a}`" for a in sorted(v.aliases)))
    history = [e for e in audit_log(1000, object=v.name)
               if e.action in ("set_alias", "request_promotion", "approve", "reject",
                               "protect_alias", "unprotect_alias", "delete_alias")]
    if history:
        rows = [[f"{e.at:%Y-%m-%d %H:%M}", e.actor, e.action.replace("_", " "), _event(e)]
                for e in reversed(history)]
        # At the top: a reviewer opening the card comes for who asked, who approved, what moved.
        parts.append("## Approvals and alias history\n\n"
                     + _table(["when (UTC)", "who", "what", "details"], rows))
    parts.append("## Intended use\n\n" + (v.description or model.get("description") or
                                          "_No description recorded. Give one when registering "
                                          "(`register_model(..., description=...)`)._"))
    source = [f"- Model: `{v.uri}`, {v.flavor}, {format_bytes(v.size)}, sha256 `{v.sha256[:16]}…`",
              f"- Registered by {v.created_by or 'unknown'} on {v.created_at:%Y-%m-%d %H:%M} UTC"]
    if run is not None:
        info = run.info
        source.append(f"- Run `{run.id[:8]}` {run.name or ''} in experiment `{run.experiment}` "
                      f"({run.status}, {run.start_time:%Y-%m-%d %H:%M} UTC, by {info.get('user')})")
        if info.get("notebook_path") or info.get("source_name"):
            source.append(f"- Notebook / source: `{info.get('notebook_path') or info.get('source_name')}`")
        if info.get("git_commit"):
            source.append(f"- Code: git `{info['git_commit'][:12]}`"
                          + (" with uncommitted changes" if info.get("git_dirty") else ""))
        if v.artifact_path:
            source.append(f"- File in the run: `{v.artifact_path}`")
    elif v.run_id:
        source.append(f"- Run `{v.run_id[:8]}` (deleted since; this card keeps what was recorded)")
    else:
        source.append("- Registered from an estimator outside any run")
    parts.append("## Source\n\n" + "\n".join(source))
    if run is not None and run.params:
        parts.append("## Parameters\n\n" + _table(["param", "value"],
                                                   [[k, val] for k, val in sorted(run.params.items())]))
    metrics = _run_metrics(v)
    if metrics:
        parts.append("## Metrics\n\n" + _table(["metric", "value"],
                                                [[k, format_number(m)] for k, m in metrics.items()]))
    if v.lineage:
        rows = [[d["name"], d["role"], f"{format_number(d.get('rows'))} × {format_number(d.get('columns'))}",
                 f"`{d['fingerprint'][:12]}`", d.get("source") or "in memory"] for d in v.lineage]
        schemas = []
        for d in v.lineage:
            columns = d.get("schema") or []
            if columns:
                shown = ", ".join(f"`{c['name']}` {c.get('dtype') or '?'}" for c in columns[:40])
                more = f", … ({len(columns) - 40} more)" if len(columns) > 40 else ""
                schemas.append(f"- **{d['name']}** ({d['role']}): {shown}{more}")
        parts.append("## Data\n\nTraining (input) and evaluation datasets of the run:\n\n"
                     + _table(["dataset", "role", "rows × columns", "fingerprint", "source"], rows)
                     + ("\n\nSchema:\n\n" + "\n".join(schemas) if schemas else ""))
    if v.signature:
        inputs = v.signature.get("inputs")
        text = (_table(["input", "dtype"], [[i["name"], i.get("dtype") or "?"] for i in inputs])
                if inputs else f"{v.signature.get('n_features', '?')} features (no column names)")
        parts.append("## Signature\n\n" + text)
    env = ws.store.environments.get(v.environment_id) if v.environment_id else None
    if env:
        pkgs = env.get("packages", {})
        parts.append(f"## Environment\n\nPython {env['python']} ({env['implementation']}) on "
                     f"{env['platform']}\n\n" + _table(
                         ["package", "version"], [[p, pkgs[p]] for p in KEY_PACKAGES if p in pkgs]))
    if v.tags:
        parts.append("## Tags\n\n" + _table(["tag", "value"], [[k, t] for k, t in sorted(v.tags.items())]))
    for title, render in _SECTIONS:
        if isinstance(render, str):
            import importlib

            module, _, function = render.partition(":")
            render = getattr(importlib.import_module(module), function)
        text = render(v)
        if text:
            parts.append(f"## {title}\n\n{text}")
    return ModelCard(v, "\n\n".join(parts) + "\n")
