"""Magics of the feature store: ``%features``."""

from __future__ import annotations

import html
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import cellops
from cellops.errors import CellopsError
from cellops.features import feature_view_status, format_ttl

_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid var(--jp-border-color2,#ddd)"
_MUTED = "color:var(--jp-ui-font-color2,#616161)"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th style='{_CELL}'>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return (f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _when(iso: str | None) -> str:
    return "—" if not iso else iso.replace("T", " ")[:16] + " UTC"


class FeatureViewsList:
    """``%features``: the views, as a table that reads without a kernel."""

    def __init__(self, views: list[cellops.FeatureView]) -> None:
        self.views = views

    def _repr_html_(self) -> str:
        if not self.views:
            return ("<p>No feature views yet: <code>cellops.register_feature_view(name, df, "
                    "entities=..., timestamp=...)</code> registers one.</p>")
        return _table(["view", "version", "entities", "features", "rows", "newest", "TTL"],
                      [[v.name, v.version, ", ".join(v.entities), ", ".join(v.features),
                        f"{v.num_rows:,}", _when(v.max_time.isoformat() if v.max_time else None),
                        format_ttl(v.ttl)] for v in self.views])

    def __repr__(self) -> str:
        return "\n".join(repr(v) for v in self.views) or "No feature views yet."


class FeatureViewReport:
    """``%features NAME``: the definition, a sample of rows, each feature's freshness, the
    online store and the models that use it."""

    def __init__(self, name: str, sample: int) -> None:
        self.status = feature_view_status(name)
        self.sample = cellops.get_feature_view(name).to_frame().tail(sample)

    def _repr_html_(self) -> str:
        s, v, online = self.status, self.status["view"], self.status["online"]
        view = cellops.get_feature_view(v["name"])
        head = (f"<div style='color:var(--jp-ui-font-color1,#222)'><b>{html.escape(v['name'])}</b> "
                f"v{v['version']} · keyed by <code>{html.escape(', '.join(v['entities']))}</code> · "
                f"time in <code>{html.escape(v['timestamp'])}</code> · TTL {format_ttl(view.ttl)} · "
                f"{v['num_rows']:,} rows, {_when(v['min_time'])} to {_when(v['max_time'])}</div>")
        if v["description"]:
            head += f"<p style='margin:4px 0'>{html.escape(v['description'])}</p>"
        features = _table(["feature", "dtype", "newest value"],
                          [[f, d, _when(s["freshness"][f])] for f, d in v["features"].items()])
        if online["materialized_to"]:
            state = (f"Online: {online['entities']:,} entities, materialized to "
                     f"{_when(online['materialized_to'])} from v{online['materialized_version']}"
                     + (" — behind the latest version" if online["behind"] else ""))
        else:
            state = f"Online: not materialized (<code>cellops.materialize('{html.escape(v['name'])}')</code>)"
        models = ", ".join(f"{m['model']} v{m['model_version']}" for m in s["models"]) or "none yet"
        sample = self.sample.to_html(index=False, max_rows=len(self.sample), border=0)
        return (f"{head}{features}<p style='margin:6px 0'>{state}</p>"
                f"<p style='margin:0 0 6px;{_MUTED}'>Used by models: {html.escape(models)}</p>"
                f"<details><summary>Latest {len(self.sample)} rows</summary>{sample}</details>")

    def __repr__(self) -> str:
        return repr(cellops.get_feature_view(self.status["view"]["name"]))


@magics_class
class Features(Magics):
    """cellops feature store magics."""

    @magic_arguments()
    @argument("name", nargs="?", help="The feature view (default: list them).")
    @argument("--sample", type=int, default=5, help="Rows of the view to show (default 5).")
    @line_magic
    def features(self, line: str) -> Any:
        """List the feature views, or show one: ``%features customer`` (its features and
        their freshness, a sample of rows, the online store, the models that use it)."""
        args = parse_argstring(self.features, line)
        try:
            if args.name is None:
                return FeatureViewsList(cellops.list_feature_views())
            return FeatureViewReport(args.name, max(args.sample, 0))
        except CellopsError as exc:
            raise UsageError(str(exc)) from None


MAGICS = [Features]
