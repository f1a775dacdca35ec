"""``cellops features list|show|materialize|get``: the feature store's commands."""

from __future__ import annotations

import click

import cellops
from cellops.features import feature_view_status, format_ttl

from .base import cli, echo_json, fmt, table


def _when(iso: str | None) -> str:
    return "—" if not iso else iso.replace("T", " ")[:16] + " UTC"


@cli.group("features")
def features_group() -> None:
    """The feature store: feature views, point-in-time training sets, online features."""


@features_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def features_list(as_json: bool) -> None:
    """The feature views, latest version of each."""
    views = cellops.list_feature_views()
    if as_json:
        echo_json([v.to_dict() for v in views])
        return
    if not views:
        click.echo("No feature views yet: cellops.register_feature_view(name, df, "
                   "entities=..., timestamp=...) in a notebook registers one.")
        return
    click.echo(table(["view", "version", "entities", "features", "rows", "newest", "ttl"],
                     [[v.name, v.version, ", ".join(v.entities), len(v.features),
                       f"{v.num_rows:,}", _when(v.max_time.isoformat() if v.max_time else None),
                       _ttl(v)] for v in views]))


def _ttl(view: cellops.FeatureView) -> str:
    return format_ttl(view.ttl)


@features_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def features_show(name: str, as_json: bool) -> None:
    """A view: its definition, features and their freshness, versions, the online store
    and the models that use it."""
    status = feature_view_status(name)
    if as_json:
        echo_json(status)
        return
    view, online = status["view"], status["online"]
    click.echo(f"{view['name']} v{view['version']} — keyed by {', '.join(view['entities'])}, "
               f"time in {view['timestamp']!r}"
               + (f", ties by {view['created_timestamp']!r}" if view["created_timestamp"] else "")
               + f", TTL {_ttl(cellops.get_feature_view(name))}")
    if view["description"]:
        click.echo(view["description"])
    click.echo(f"{view['num_rows']:,} rows from {_when(view['min_time'])} to {_when(view['max_time'])}"
               + (f"; source {view['source']}" if view["source"] else ""))
    click.echo("\n" + table(["feature", "dtype", "newest value"],
                            [[f, dtype, _when(status["freshness"][f])]
                             for f, dtype in view["features"].items()]))
    click.echo("\n" + table(["version", "rows", "registered", "by", "fingerprint"],
                            [[v["version"], f"{v['num_rows']:,}", _when(v["created_at"]),
                              fmt(v["created_by"]), v["fingerprint"][:12]]
                             for v in status["versions"]]))
    if online["materialized_to"]:
        click.echo(f"\nOnline: {online['entities']:,} entities, materialized to "
                   f"{_when(online['materialized_to'])} from v{online['materialized_version']}"
                   + (" (behind the latest version: run cellops features materialize)"
                      if online["behind"] else ""))
    else:
        click.echo(f"\nOnline: not materialized (cellops features materialize {name}).")
    if status["models"]:
        click.echo("Used by: " + ", ".join(f"{m['model']} v{m['model_version']}"
                                          for m in status["models"]))


@features_group.command("materialize")
@click.argument("views", nargs=-1)
@click.option("--end", help="Materialize as of this time (ISO 8601; naive is UTC). Default: now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def features_materialize(views: tuple[str, ...], end: str | None, as_json: bool) -> None:
    """Write the latest value of each entity (every view, or VIEWS) to the online store."""
    done = cellops.materialize(list(views) or None, end=end)
    if as_json:
        echo_json([{"view": m.view, "version": m.version, "end": m.end.isoformat(),
                    "rows_written": m.rows_written, "rows_expired": m.rows_expired,
                    "incremental": m.incremental} for m in done])
        return
    if not done:
        click.echo("No feature views to materialize.")
        return
    click.echo(table(["view", "version", "to", "written", "expired", "how"],
                     [[m.view, m.version, _when(m.end.isoformat()), m.rows_written, m.rows_expired,
                       "incremental" if m.incremental else "full"] for m in done]))


def _entity(text: str) -> dict[str, str]:
    row = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{text!r}: write KEY=VALUE, or KEY=VALUE,KEY=VALUE for a "
                                     "composite key.", param_hint="--entity")
        row[key.strip()] = value.strip()
    return row


@features_group.command("get")
@click.argument("features", nargs=-1, required=True)
@click.option("--entity", "entities", multiple=True, required=True, metavar="KEY=VALUE[,KEY=VALUE]",
              help="An entity to look up (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def features_get(features: tuple[str, ...], entities: tuple[str, ...], as_json: bool) -> None:
    """Online values of FEATURES ('view:feature' or 'view:*') for each --entity."""
    rows = [_entity(e) for e in entities]
    got = cellops.get_online_features(list(features), rows, to_dict=True)
    if as_json:
        echo_json(got)
        return
    columns = list(got)
    click.echo(table(columns, [[fmt(got[c][i]) for c in columns] for i in range(len(rows))]))
