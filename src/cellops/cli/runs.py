"""``cellops init``, ``runs``, ``experiments``, ``artifacts``, ``gc``, ``history``: the
tracking area's commands."""

from __future__ import annotations

import sys
from typing import Any

import click

import cellops
from cellops.display import format_bytes, format_duration

from .base import INT64_MAX, Seconds, cli, echo_json, fmt, table


@cli.group()
def runs() -> None:
    """List, show, compare and delete runs."""


@runs.command("list")
@click.option("-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="FILTER",
              help="MLflow-style filter, e.g. \"metrics.acc > 0.9 and params.model = 'rf'\".")
@click.option("-o", "--order-by", multiple=True, metavar="KEY",
              help="Sort key such as 'metrics.acc DESC' (repeatable).")
@click.option("-n", "--limit", type=click.IntRange(min=0, max=INT64_MAX), default=50,
              show_default=True,
              help="Show at most this many runs (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
def runs_list(experiment: tuple[str, ...], filter_: str | None, order_by: tuple[str, ...],
              limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    runs: list[dict[str, Any]] = []
    while limit == 0 or len(runs) < limit:
        want = limit - len(runs) if limit else 1000
        page = cellops.list_runs(list(experiment) or None, filter_, list(order_by) or None,
                                 limit=min(1000, want), offset=len(runs))
        runs += page.runs
        if len(runs) >= page.total or not page.runs:
            break
    keys = {kind: sorted({k for r in runs for k in r[kind]}) for kind in ("params", "metrics", "tags")}
    if as_json:
        # A key a run does not have is null; a metric it logged as NaN is "NaN".
        echo_json([{**{k: v for k, v in r.items() if k not in keys},
                     **{f"{kind}.{k}": r[kind].get(k) for kind in keys for k in keys[kind]}}
                    for r in runs])
        return
    if not runs:
        click.echo("No runs" + (" match the filter." if filter_ else " yet. Try `cellops demo`."))
        return
    metric_keys = keys["metrics"][:5]
    headers = ["run", "name", "experiment", "status", "started", "duration"] + metric_keys
    rows = [[r["run_id"][:8], r["name"], r["experiment"], r["status"], r["start_time"],
             format_duration(r["duration_s"])] + [r["metrics"].get(k) for k in metric_keys]
            for r in runs]
    click.echo(table(headers, rows))


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: attributes, params, metrics, tags, artifacts, datasets."""
    d = cellops.get_run(run_id).to_dict()
    if as_json:
        echo_json(d)
        return
    git = d["git"]
    lines = [
        f"Run {d['run_id']}  {d['name'] or ''}".rstrip(),
        f"  experiment  {d['experiment']}    kind {d['kind']}",
        f"  status      {d['status']}",
        f"  started     {fmt(d['start_time'])}   duration {format_duration(d['duration_s'])}",
        f"  by          {d['user']}@{d['host']} (pid {d['pid']})",
    ]
    if d["parent_run_id"]:
        lines.append(f"  parent      {d['parent_run_id']}")
    if d["source_name"]:
        lines.append(f"  source      {d['source_name']}")
    if git["commit"] or git["dirty"]:
        lines.append(f"  git         {(git['commit'] or '')[:12]} {git['branch'] or ''}"
                     f"{' (dirty)' if git['dirty'] else ''}")
    for title, mapping in (("Params", d["params"]), ("Metrics", d["metrics"]), ("Tags", d["tags"])):
        if mapping:
            lines.append(f"{title}:")
            width = max(len(k) for k in mapping)
            lines += [f"  {k.ljust(width)}  {fmt(v)}" for k, v in sorted(mapping.items())]
    if d["artifacts"]:
        lines.append("Artifacts:")
        lines += [f"  {a['path']}  ({format_bytes(a['size'])})" for a in d["artifacts"]]
    if d["datasets"]:
        lines.append("Datasets:")
        lines += [f"  {x['role']:<6} {x['name']}  {x['digest']}  {x['rows']}x{x['columns']}"
                  for x in d["datasets"]]
    if d["children"]:
        lines.append(f"Children: {', '.join(c[:8] for c in d['children'])}")
    if d["error"]:
        lines.append("Error:")
        lines += ["  " + ln for ln in d["error"].rstrip().splitlines()[-8:]]
    click.echo("\n".join(lines))


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Show rows that are equal too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_compare(run_ids: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """Compare params and metrics of two or more runs (differences only, unless --all)."""
    df = cellops.compare_runs(list(run_ids))
    if as_json:
        echo_json({k: {c: df.at[k, c] for c in df.columns} for k in df.index})
        return
    shown = df if show_all else df[df["differs"]]
    if shown.empty:
        click.echo("The runs have the same params and metrics.")
        return
    runs_cols = [c for c in df.columns if c != "differs"]
    rows = [[k] + [shown.at[k, c] for c in runs_cols] for k in shown.index]
    click.echo(table(["key"] + runs_cols, rows))


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Delete RUNNING runs even when their process is alive (its later logging "
                   "to them fails), and runs registered model versions come from (an approver "
                   "of the model's protected aliases only).")
def runs_delete(run_ids: tuple[str, ...], yes: bool, force: bool) -> None:
    """Delete runs and their child runs (artifact blobs go at the next `cellops gc`).

    A run still RUNNING in a live process, or one a registered model version comes from,
    is refused unless --force; a model with protected aliases lets only their approvers
    force it. Every deleted run is an audit log entry.
    """
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("Refusing to delete without confirmation; pass --yes.")
        click.confirm(f"Delete {len(run_ids)} run(s) and their child runs?", abort=True)
    deleted = cellops.delete_runs(list(run_ids), force=force)
    click.echo(f"Deleted {len(deleted)} run(s). Run `cellops gc` to free artifact space.")


# -- experiments, artifacts, gc ------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def experiments(as_json: bool) -> None:
    """List experiments with their number of runs."""
    exps = cellops.list_experiments()
    if as_json:
        echo_json([e.__dict__ for e in exps])
        return
    if not exps:
        click.echo("No experiments yet.")
        return
    click.echo(table(["name", "runs", "last run", "created"],
                      [[e.name, e.run_count, e.last_run_time, e.created_at] for e in exps]))


@cli.group()
def artifacts() -> None:
    """List and fetch run artifacts."""


@artifacts.command("list")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def artifacts_list(run_id: str, as_json: bool) -> None:
    """List the artifacts of a run."""
    arts = cellops.get_run(run_id).artifacts
    if as_json:
        echo_json(arts)
        return
    if not arts:
        click.echo("The run has no artifacts.")
        return
    click.echo(table(["path", "size", "media type", "sha256"],
                      [[a["path"], a["size"], a["media_type"], a["sha256"][:12]] for a in arts]))


@artifacts.command("get")
@click.argument("run_id")
@click.argument("name")
@click.option("-o", "--output", default=".", show_default=True, metavar="DEST",
              help="Folder or file to write to; '-' writes the bytes to stdout.")
def artifacts_get(run_id: str, name: str, output: str) -> None:
    """Copy artifact NAME of a run to DEST."""
    run = cellops.get_run(run_id)
    if output == "-":
        click.get_binary_stream("stdout").write(run.read_artifact(name))
        return
    click.echo(str(run.download_artifact(name, output)))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option("--grace", type=Seconds(), default=3600.0,
              show_default=True, metavar="SECONDS",
              help="Leave blobs and temp files younger than this (a write may be in progress "
                   "in another process); 0 takes everything unreferenced now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gc(dry_run: bool, grace: float, as_json: bool) -> None:
    """Delete artifact blobs no run refers to, and temp files of interrupted writes."""
    report = cellops.garbage_collect(dry_run=dry_run, grace=grace)
    if as_json:
        echo_json({**report.__dict__, "freed": report.freed})
        return
    verb = "Would delete" if dry_run else "Deleted"
    lines = [f"{verb} {len(report.blobs)} unreferenced blob(s) ({format_bytes(report.bytes)}) and "
             f"{len(report.temp_files)} temp file(s) of interrupted writes "
             f"({format_bytes(report.temp_bytes)}): {format_bytes(report.freed)} "
             + ("to free." if dry_run else "freed.")]
    if report.kept:
        lines.append(f"Kept {report.kept} younger than {report.grace_s:g} s (a write may be in "
                     "progress); `cellops gc --grace 0` takes them too.")
    click.echo("\n".join(lines))


@cli.command()
@click.argument("run_id")
@click.argument("output", required=False, type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(["notebook"]), default=None,
              help="Write the history as a notebook to OUTPUT.")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded cells as JSON.")
def history(run_id: str, output: str | None, to: str | None, as_json: bool) -> None:
    """Show the cells a notebook run recorded with `%track on`, in the order they ran.

    With `--to notebook OUTPUT` write them as a new notebook that, run top to bottom by
    Jupyter or papermill, repeats what happened (cells that raised are kept under
    %%expect_error, which prints the error and goes on).
    """
    if to == "notebook" or output:
        if not output:
            raise click.UsageError("Name the notebook to write: cellops history RUN --to notebook out.ipynb")
        click.echo(str(cellops.export_history(run_id, output)))
        return
    cells = cellops.cell_history(run_id)
    if as_json:
        echo_json(cells)
        return
    if not cells:
        click.echo("No cells recorded for this run. Record them with `%track on` in a notebook.")
        return
    rows = [[c["seq"], c["execution_count"], c["status"],
             "not timed" if c["duration_ms"] is None else format_duration(c["duration_ms"] / 1000),
             c["source"].strip().splitlines()[0] if c["source"].strip() else ""] for c in cells]
    click.echo(table(["seq", "In", "status", "duration", "first line"], rows, max_width=60))


