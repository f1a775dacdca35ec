"""The ``cellops`` command line: a thin adapter over the public API.

Exit codes scripts can rely on: 0 success, 1 a cellops error (not found, bad
filter, ...; message on stderr, no traceback), 2 a usage error.
``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import click

import cellops
from cellops.display import format_bytes, format_duration, format_number
from cellops.errors import CellopsError
from cellops.jsonable import to_jsonable

# Bounds on numeric options: anything beyond is a mistake, refused with click's message
# (never an overflow deep inside SQLite or a process pool).
INT64_MAX = 2**63 - 1
MAX_WORKERS = 1024
MAX_SECONDS = 10**7


class Seconds(click.FloatRange):
    """A number of seconds from ``min`` to ``MAX_SECONDS``; NaN is refused (FloatRange lets
    it through, since every comparison with NaN is false)."""

    name = "seconds"

    def __init__(self, min: float = 0, min_open: bool = False) -> None:  # noqa: A002
        super().__init__(min=min, max=MAX_SECONDS, min_open=min_open)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not in the range {self._describe_range()}.", param, ctx)
        return number


class _Group(click.Group):
    """Turns cellops errors into one-line messages and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CellopsError as exc:
            raise click.ClickException(str(exc)) from None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False))


def _fmt(value: Any) -> str:
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:  # NaT
            return ""
    return format_number(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    """Plain aligned columns (readable in any terminal and in CI logs)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


@click.group(cls=_Group)
@click.version_option(cellops.__version__, prog_name="cellops")
@click.option("-w", "--workspace", "workspace_path", metavar="PATH", envvar="CELLOPS_HOME",
              help="Workspace to use: its .cellops folder, or a project folder holding one "
                   "(default: the .cellops/ found from the current directory; also "
                   "$CELLOPS_HOME). It must exist, except for `cellops init`.")
@click.pass_context
def cli(ctx: click.Context, workspace_path: str | None) -> None:
    """cellops: notebook-native MLOps on an embedded SQLite workspace."""
    if not workspace_path:
        return
    path = os.path.abspath(os.path.expanduser(workspace_path))
    from_flag = ctx.get_parameter_source("workspace_path") == click.core.ParameterSource.COMMANDLINE
    if from_flag and ctx.invoked_subcommand != "init":
        path = _existing_workspace(path)
    os.environ["CELLOPS_HOME"] = path


def _existing_workspace(path: str) -> str:
    """The workspace folder ``-w PATH`` names; a typo must not create a new, empty one."""
    found = cellops.workspace_folder(path)
    if found is None:
        raise click.BadParameter(
            f"no cellops workspace at {path} (no database there or in .cellops/ inside it). "
            f"Check the path, or create one with `cellops init {path}`.",
            param_hint="'-w' / '--workspace'")
    return str(found)


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
def init(path: str | None) -> None:
    """Create a workspace (.cellops/) in PATH (default: the current directory)."""
    if path is None and os.environ.get("CELLOPS_HOME"):
        ws = cellops.init_workspace()
    else:
        ws = cellops.init_workspace(path or os.getcwd())
    click.echo(f"Workspace ready at {ws.path}")


# -- runs --------------------------------------------------------------------
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
        _echo_json([{**{k: v for k, v in r.items() if k not in keys},
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
    click.echo(_table(headers, rows))


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: attributes, params, metrics, tags, artifacts, datasets."""
    d = cellops.get_run(run_id).to_dict()
    if as_json:
        _echo_json(d)
        return
    git = d["git"]
    lines = [
        f"Run {d['run_id']}  {d['name'] or ''}".rstrip(),
        f"  experiment  {d['experiment']}    kind {d['kind']}",
        f"  status      {d['status']}",
        f"  started     {_fmt(d['start_time'])}   duration {format_duration(d['duration_s'])}",
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
            lines += [f"  {k.ljust(width)}  {_fmt(v)}" for k, v in sorted(mapping.items())]
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
        _echo_json({k: {c: df.at[k, c] for c in df.columns} for k in df.index})
        return
    shown = df if show_all else df[df["differs"]]
    if shown.empty:
        click.echo("The runs have the same params and metrics.")
        return
    runs_cols = [c for c in df.columns if c != "differs"]
    rows = [[k] + [shown.at[k, c] for c in runs_cols] for k in shown.index]
    click.echo(_table(["key"] + runs_cols, rows))


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Delete RUNNING runs even when their process is alive (its later logging "
                   "to them fails).")
def runs_delete(run_ids: tuple[str, ...], yes: bool, force: bool) -> None:
    """Delete runs and their child runs (artifact blobs go at the next `cellops gc`).

    A run still RUNNING in a live process is refused, naming the process, unless --force.
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
        _echo_json([e.__dict__ for e in exps])
        return
    if not exps:
        click.echo("No experiments yet.")
        return
    click.echo(_table(["name", "runs", "last run", "created"],
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
        _echo_json(arts)
        return
    if not arts:
        click.echo("The run has no artifacts.")
        return
    click.echo(_table(["path", "size", "media type", "sha256"],
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
        _echo_json({**report.__dict__, "freed": report.freed})
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

    With `--to notebook OUTPUT` write them as a new notebook that, run top to bottom,
    repeats what happened (cells that raised are kept and tagged raises-exception).
    """
    if to == "notebook" or output:
        if not output:
            raise click.UsageError("Name the notebook to write: cellops history RUN --to notebook out.ipynb")
        click.echo(str(cellops.export_history(run_id, output)))
        return
    cells = cellops.cell_history(run_id)
    if as_json:
        _echo_json(cells)
        return
    if not cells:
        click.echo("No cells recorded for this run. Record them with `%track on` in a notebook.")
        return
    rows = [[c["seq"], c["execution_count"], c["status"], f"{c['duration_ms']} ms",
             c["source"].strip().splitlines()[0] if c["source"].strip() else ""] for c in cells]
    click.echo(_table(["seq", "In", "status", "duration", "first line"], rows, max_width=60))


@cli.group()
def pipeline() -> None:
    """Run pipelines of parameterized notebooks and see what is up to date."""


@pipeline.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="[STEP.]KEY=VALUE",
              help="Override a parameter of one step (step.key=value) or of all (key=value).")
@click.option("--force", is_flag=True, help="Re-run every step, cached or not.")
@click.option("--only", multiple=True, metavar="STEP", help="Run only this step (repeatable).")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=1,
              show_default=True, help="Independent steps run in parallel up to this many.")
@click.option("--executor", default="local", show_default=True, metavar="local|dask://HOST:PORT",
              help="Where steps run.")
def pipeline_run(file: str, params: tuple[str, ...], force: bool, only: tuple[str, ...],
                 workers: int, executor: str) -> None:
    """Run the steps of a pipeline file that are not up to date."""
    from cellops.pipelines import run_pipeline

    result = run_pipeline(file, list(params), force=force, only=list(only) or None,
                          workers=workers, executor=executor, progress=click.echo)
    counts = {}
    for s in result.steps.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    click.echo(f"pipeline run {result.run_id[:8]}: "
               + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if not result.ok:
        failed = [s for s in result.steps.values() if s.status == "failed"]
        for s in failed:
            click.echo(f"step {s.name} failed: {s.error}\n"
                       f"  output notebook: {s.output_notebook}\n"
                       f"  run: cellops runs show {(s.run_id or '')[:8]}", err=True)
        raise SystemExit(1)


@pipeline.command("status")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="[STEP.]KEY=VALUE",
              help="Check as if run with this override.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with every cache key part.")
def pipeline_status_cmd(file: str, params: tuple[str, ...], as_json: bool) -> None:
    """Say for every step whether it is up to date and, if not, why."""
    from cellops.pipelines import pipeline_status

    rows = pipeline_status(file, list(params))
    if as_json:
        _echo_json(rows)
        return
    click.echo(_table(["step", "status", "why", "cached run"],
                      [[r["step"], "up to date" if r["up_to_date"] else "will run", r["reason"],
                        (r["run_id"] or "")[:8]] for r in rows], max_width=70))


@cli.command()
@click.argument("notebook", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="Values to sweep for one parameter (repeatable; the grid is their product).")
@click.option("--random", "random_n", type=click.IntRange(min=1, max=1_000_000), default=None,
              metavar="N", help="Run N random combinations of the grid instead of all of it.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=1,
              show_default=True, help="Trials run in parallel up to this many.")
@click.option("--executor", default="local", show_default=True, metavar="local|dask://HOST:PORT",
              help="Where trials run.")
@click.option("--metric", default=None, help="Rank trials by this metric.")
@click.option("--goal", type=click.Choice(["max", "min"]), default="max", show_default=True,
              help="Whether a higher or lower --metric is better.")
@click.option("--timeout", type=Seconds(min_open=True), default=None,
              help="Seconds any one cell may take.")
def sweep(notebook: str, params: tuple[str, ...], random_n: int | None, workers: int,
          executor: str, metric: str | None, goal: str, timeout: float | None) -> None:
    """Run NOTEBOOK over a grid of parameters as trials of one sweep run, ranked."""
    from cellops.pipelines import run_sweep

    result = run_sweep(notebook, list(params), random_n=random_n, workers=workers,
                       executor=executor, timeout=timeout, metric=metric, goal=goal,
                       progress=click.echo)
    trials = result.ranked(metric, goal) if metric else result.trials
    metric_keys = [metric] if metric else sorted({k for t in trials for k in t["metrics"]})[:4]
    param_keys = list(trials[0]["params"]) if trials else []
    click.echo(f"\nsweep {result.run_id[:8]}" + (f", best {metric} ({goal}) first:" if metric else ":"))
    click.echo(_table(["trial", "run", "status"] + param_keys + metric_keys,
                      [[t["trial"], t["run_id"][:8], t["status"]] + [t["params"][k] for k in param_keys]
                       + [t["metrics"].get(k) for k in metric_keys] for t in trials]))
    if any(t["status"] != "FINISHED" for t in trials):
        raise SystemExit(1)


@cli.command()
@click.argument("run_id")
@click.option("--allow-changed", is_flag=True,
              help="Run even when a recorded input changed and cannot be restored (the verdict "
                   "lists it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def reproduce(run_id: str, allow_changed: bool, as_json: bool) -> None:
    """Re-execute a recorded step, trial, notebook or %%track cell run and compare its metrics.

    Inputs, git commit and environment are checked against the recorded ones first; a
    changed input is restored from the workspace when its bytes are stored there, else the
    reproduction is refused unless --allow-changed.
    """
    from cellops.pipelines import reproduce as do_reproduce

    result = do_reproduce(run_id, allow_changed=allow_changed,
                          progress=lambda m: click.echo(m, err=True))
    if as_json:
        _echo_json({**result.__dict__, "error": str(result.error) if result.error else None})
    else:
        click.echo(f"reproduced {result.original_id[:8]} as {result.run_id[:8]}: {result.status}")
        if result.changed:
            click.echo(f"NOT a faithful reproduction: ran on changed input(s) "
                       f"{', '.join(result.changed)}")
        if result.metrics:
            click.echo(_table(["metric", "original", "reproduced", "difference"],
                              [[m["key"], m["original"], m["reproduced"], m["difference"]]
                               for m in result.metrics]))
    if result.status != "FINISHED":
        raise click.ClickException(f"the reproduction failed: {result.error}")


@cli.command()
@click.argument("run_id")
@click.argument("expression")
def gate(run_id: str, expression: str) -> None:
    """Exit 0 when a run satisfies EXPRESSION (search grammar), 1 when it does not (for CI).

    Example: cellops gate 3f2a "metrics.acc >= 0.9 and metrics.f1 >= 0.8"
    """
    from cellops.pipelines import gate as do_gate

    result = do_gate(run_id, expression)
    click.echo(str(result))
    if not result.passed:
        raise SystemExit(1)


@cli.command()
@click.argument("folder", required=False, default="cellops-demo", type=click.Path(file_okay=False))
def demo(folder: str) -> None:
    """Train a few scikit-learn models and run the example pipeline, all in FOLDER.

    FOLDER (default: ./cellops-demo) gets its own workspace, the example pipeline and its
    outputs, and a .gitignore that keeps it out of git.
    """
    from cellops.demo import prepare_folder, run_demo

    target = prepare_folder(Path(folder).absolute())
    os.chdir(target)  # the demo's workspace and files live in its folder
    if not os.environ.get("CELLOPS_HOME"):
        cellops.init_workspace(target)
    run_demo(click.echo)
    click.echo(f"\nDone: everything is in {target} (git ignores it). Look around with "
               f"`cd {folder} && cellops runs list`, or open JupyterLab there.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cellops`` script."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="cellops",
                 standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    """Every command path (``runs list``...), for the docs test."""
    out = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out += command_paths(cmd, path + " ")
        else:
            out.append(path)
    return out


if __name__ == "__main__":
    sys.exit(main())
