"""``cellops pipeline``, ``sweep``, ``reproduce``, ``gate`` and ``demo``: the pipelines
area's commands."""

from __future__ import annotations

import os
from pathlib import Path

import click

import cellops

from .base import MAX_WORKERS, Seconds, cli, echo_json, run_ref, table


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
@click.option("--allow-unknown-params", "allow_unknown", is_flag=True,
              help="Inject parameters a notebook does not declare in its parameters cell "
                   "(refused by default: the notebook would ignore them).")
def pipeline_run(file: str, params: tuple[str, ...], force: bool, only: tuple[str, ...],
                 workers: int, executor: str, allow_unknown: bool) -> None:
    """Run the steps of a pipeline file that are not up to date."""
    from cellops.pipelines import run_pipeline

    result = run_pipeline(file, list(params), force=force, only=list(only) or None,
                          workers=workers, executor=executor, progress=click.echo,
                          allow_unknown=allow_unknown)
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
@click.option("--allow-unknown-params", "allow_unknown", is_flag=True,
              help="Inject parameters a notebook does not declare in its parameters cell "
                   "(refused by default: the notebook would ignore them).")
def pipeline_status_cmd(file: str, params: tuple[str, ...], as_json: bool,
                        allow_unknown: bool) -> None:
    """Say for every step whether it is up to date and, if not, why."""
    from cellops.pipelines import pipeline_status

    rows = pipeline_status(file, list(params), allow_unknown=allow_unknown)
    if as_json:
        echo_json(rows)
        return
    click.echo(table(["step", "status", "why", "cached run"],
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
@click.option("--allow-unknown-params", "allow_unknown", is_flag=True,
              help="Inject parameters a notebook does not declare in its parameters cell "
                   "(refused by default: the notebook would ignore them).")
def sweep(notebook: str, params: tuple[str, ...], random_n: int | None, workers: int,
          executor: str, metric: str | None, goal: str, timeout: float | None,
          allow_unknown: bool) -> None:
    """Run NOTEBOOK over a grid of parameters as trials of one sweep run, ranked."""
    from cellops.pipelines import run_sweep

    result = run_sweep(notebook, list(params), random_n=random_n, workers=workers,
                       executor=executor, timeout=timeout, metric=metric, goal=goal,
                       progress=click.echo, allow_unknown=allow_unknown)
    trials = result.ranked(metric, goal) if metric else result.trials
    metric_keys = [metric] if metric else sorted({k for t in trials for k in t["metrics"]})[:4]
    param_keys = list(trials[0]["params"]) if trials else []
    click.echo(f"\nsweep {result.run_id[:8]}" + (f", best {metric} ({goal}) first:" if metric else ":"))
    click.echo(table(["trial", "run", "status"] + param_keys + metric_keys,
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
        echo_json({**result.__dict__, "error": str(result.error) if result.error else None})
    else:
        click.echo(f"reproduced {result.original_id[:8]} as {result.run_id[:8]}: {result.status}")
        if result.changed:
            click.echo(f"NOT a faithful reproduction: ran on changed input(s) "
                       f"{', '.join(result.changed)}")
        if result.metrics:
            click.echo(table(["metric", "original", "reproduced", "difference"],
                              [[m["key"], m["original"], m["reproduced"], m["difference"]]
                               for m in result.metrics]))
    if result.status != "FINISHED":
        raise click.ClickException(f"the reproduction failed: {result.error}")


@cli.command()
@click.argument("run_id")
@click.argument("expression")
def gate(run_id: str, expression: str) -> None:
    """Exit 0 when a run satisfies EXPRESSION (search grammar), 1 when it does not (for CI).

    RUN_ID is a run id (or prefix) or pipeline:PIPELINE/STEP (that step's newest run).
    Example: cellops gate 3f2a "metrics.acc >= 0.9 and metrics.f1 >= 0.8"
    """
    from cellops.pipelines import gate as do_gate

    result = do_gate(run_ref(run_id), expression)
    click.echo(str(result))
    if not result.passed:
        raise SystemExit(1)


@cli.command()
@click.argument("folder", required=False, default="cellops-demo", type=click.Path(file_okay=False))
def demo(folder: str) -> None:
    """Train a few scikit-learn models, run the example pipeline, then the monitoring loop
    (serve, shifted stream, alert, retrain, approve), all in FOLDER.

    FOLDER (default: ./cellops-demo) gets its own workspace, the example pipeline and the
    monitoring notebook with their outputs, and a .gitignore that keeps it out of git.
    """
    from cellops.demo import prepare_folder, run_demo

    target = prepare_folder(Path(folder).absolute())
    os.chdir(target)  # the demo's workspace and files live in its folder
    if not os.environ.get("CELLOPS_HOME"):
        cellops.init_workspace(target)
    run_demo(click.echo)
    click.echo(f"\nDone: everything is in {target} (git ignores it). Look around with "
               f"`cd {folder} && cellops runs list`, or open JupyterLab there.")


