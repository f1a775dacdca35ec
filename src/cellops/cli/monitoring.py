"""``cellops drift``, ``cellops monitor ...`` and ``cellops alerts ...``: the monitoring
area's commands."""

from __future__ import annotations

from pathlib import Path

import click

import cellops
from cellops.display import format_number

from .base import cli, echo_json, fmt, table


def _read(path: str) -> object:
    import pandas as pd

    p = Path(path)
    if p.is_file():
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if p.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(p)
        raise click.BadParameter(f"{path}: read .csv or .parquet files (or name a logged dataset).")
    return path  # the name of a logged dataset


@cli.command("drift")
@click.argument("reference")
@click.argument("current")
@click.option("--column", "columns", multiple=True, help="Test only this column (repeatable).")
@click.option("--categorical", multiple=True, help="Treat this column as categories (repeatable).")
@click.option("--method", default="auto", show_default=True,
              help="auto (Evidently's choice per column) or a test: ks, chisquare, z, wasserstein, "
                   "jensenshannon, psi, kl_div, hellinger, anderson, cramer_von_mises.")
@click.option("--threshold", type=float, help="The test's threshold (default: its own).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write the "
                                                                           "report as HTML.")
@click.option("--log", is_flag=True, help="Record the report as a run (kind monitor).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def drift_command(reference: str, current: str, columns: tuple[str, ...],
                  categorical: tuple[str, ...], method: str, threshold: float | None,
                  html_path: str | None, log: bool, as_json: bool) -> None:
    """Test CURRENT for drift from REFERENCE (CSV or Parquet files, or logged dataset names).

    Exits 3 when the dataset drifted (share of drifted columns >= 0.5), so a script or CI
    job can stop on it.
    """
    report = cellops.drift(_read(reference), _read(current), columns=list(columns) or None,
                           categorical=list(categorical), method=method, threshold=threshold,
                           log=log)
    if html_path:
        report.save_html(html_path)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(table(["column", "type", "test", "statistic", "threshold", "drift",
                          "missing", "new categories"],
                         [[r["column"], r["type"], r["test"] or r["note"],
                           format_number(r["statistic"]), format_number(r["threshold"]),
                           "DRIFT" if r["drifted"] else "", f"{r['missing_current']:.1%}",
                           ", ".join(map(str, r["new_categories"][:3]))]
                          for r in report.to_dict()["columns"]]))
        click.echo(f"\n{'DATASET DRIFT' if report.drifted else 'No dataset drift'}: "
                   f"{len(report.drifted_columns)} of {len(report.columns)} columns drifted "
                   f"(share {report.share:.2f}, threshold {report.drift_share:g})"
                   + (f"; logged as run {report.run_id}" if report.run_id else ""))
    if report.drifted:
        raise SystemExit(3)


@cli.group("monitor")
def monitor_group() -> None:
    """Monitors: checks of a model's logged predictions, window after window."""


@monitor_group.command("apply")
@click.argument("path", type=click.Path(dir_okay=False))
def monitor_apply(path: str) -> None:
    """Create or update the monitors of a monitors.yaml (all are validated first)."""
    for m in cellops.apply_monitors(path):
        click.echo(f"Monitor {m.name}: {m.model}, window {m.spec['window']['text']}, checks "
                   f"{', '.join(c['name'] for c in m.spec['checks'])}")


@monitor_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def monitor_list(as_json: bool) -> None:
    """List monitors with their state."""
    found = cellops.monitors()
    if as_json:
        echo_json([{**m.to_dict(), "state": m.state} for m in found])
        return
    if not found:
        click.echo("No monitors. Create them with `cellops monitor apply monitors.yaml`.")
        return
    click.echo(table(["name", "model", "window", "state", "checks"],
                     [[m.name, m.model, m.spec["window"]["text"], m.state,
                       ", ".join(c["name"] for c in m.spec["checks"])] for m in found]))


@monitor_group.command("run")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def monitor_run(name: str | None, as_json: bool) -> None:
    """Evaluate every complete window not evaluated yet (of NAME, or of every monitor).

    Exits 3 when a window failed a check, so CI can stop on it."""
    results = cellops.run_monitors(name, progress=None if as_json else click.echo)
    if as_json:
        echo_json([r.__dict__ for r in results])
    elif not results:
        click.echo("No new complete window to evaluate.")
    if any(r.status == "failing" for r in results):
        raise SystemExit(3)


@monitor_group.command("watch")
@click.argument("name", required=False)
@click.option("--every", default="5m", show_default=True,
              help="How often to look for new windows: 30s, 5m, 1h ...")
@click.option("--iterations", type=click.IntRange(1), help="Stop after this many turns.")
def monitor_watch(name: str | None, every: str, iterations: int | None) -> None:
    """Run the monitors every --every until Ctrl-C (webhooks that failed are retried)."""
    click.echo(f"Watching {name or 'every monitor'} every {every}; Ctrl-C stops.", err=True)
    try:
        from cellops.monitoring import watch

        watch(name, every=every, iterations=iterations, progress=click.echo)
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


@monitor_group.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True,
              help="Show the last this many windows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def monitor_history_command(name: str, limit: int, as_json: bool) -> None:
    """A monitor's results, one line per window."""
    frame = cellops.monitor_history(name, limit=limit)
    if as_json:
        echo_json(frame.to_dict(orient="records"))
        return
    if frame.empty:
        click.echo(f"Monitor {name} has evaluated no window yet: `cellops monitor run {name}`.")
        return
    checks = [c for c in frame.columns if c.endswith(".passed")]
    click.echo(table(["window end", "rows", "status", "drift share"] + [c[:-7] for c in checks],
                     [[fmt(r["window_end"]), r["rows"], r["status"],
                       format_number(r["drift_share"])]
                      + [("ok" if r[c] else "FAIL" if r[c] is False else "-") + " "
                         + format_number(r[c[:-7]]) for c in checks]
                      for r in frame.to_dict(orient="records")]))


@monitor_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
def monitor_delete(name: str, yes: bool) -> None:
    """Delete a monitor with its results and alerts."""
    cellops.get_monitor(name)
    if not yes:
        click.confirm(f"Delete monitor {name} with its history and alerts?", abort=True)
    cellops.delete_monitor(name)
    click.echo(f"Deleted monitor {name}.")


@cli.group("alerts")
def alerts_group() -> None:
    """Alerts opened by failing monitor checks."""


@alerts_group.command("list")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved", "active", "all"]),
              default="active", show_default=True, help="active: not resolved.")
@click.option("--monitor", help="Only this monitor's alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def alerts_list(state: str, monitor: str | None, as_json: bool) -> None:
    """List alerts (newest first) with what was done about them."""
    found = cellops.alerts(None if state == "all" else state, monitor)
    if as_json:
        echo_json([a.to_dict() for a in found])
        return
    if not found:
        click.echo(f"No {'' if state == 'all' else state + ' '}alerts.")
        return
    click.echo(table(["id", "state", "monitor", "check", "opened", "windows", "message", "actions"],
                     [[a.id, a.state, a.monitor, a.check, fmt(a.opened_at), a.windows, a.message,
                       "; ".join(_action(x) for x in a.actions)] for a in found], max_width=60))


def _action(a: dict) -> str:
    if a.get("kind") == "retrain":
        parts = [f"retrain {a.get('status')}"]
        if a.get("pipeline_run"):
            parts.append(f"run {a['pipeline_run'][:8]}")
        if a.get("version"):
            parts.append(f"v{a['version']}")
        if a.get("request"):
            parts.append(f"request #{a['request']}")
        if a.get("error"):
            parts.append(a["error"][:60])
        return " ".join(parts)
    return str(a.get("kind"))


@alerts_group.command("ack")
@click.argument("alert_id", type=int)
@click.option("-m", "--comment", help="Why, or who is on it.")
def alerts_ack(alert_id: int, comment: str | None) -> None:
    """Acknowledge an open alert (records who and when)."""
    click.echo(str(cellops.ack_alert(alert_id, comment)))


@alerts_group.command("resolve")
@click.argument("alert_id", type=int)
@click.option("-m", "--comment", help="What was done.")
def alerts_resolve(alert_id: int, comment: str | None) -> None:
    """Resolve an open or acknowledged alert."""
    click.echo(str(cellops.resolve_alert(alert_id, comment)))
