"""``cellops automl``: an AutoML search over a CSV or Parquet file."""

from __future__ import annotations

from pathlib import Path

import click

import cellops

from .base import cli, echo_json, table


@cli.command("automl")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--target", required=True, help="The column to predict.")
@click.option("--budget", type=float, default=60, show_default=True, help="Seconds to search.")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True, help="What to predict (auto: labels or few whole numbers are classes).")
@click.option("--metric", help="A scikit-learn scorer name (default: roc_auc, accuracy or r2).")
@click.option("--cv", default="auto", show_default=True,
              help="Folds (a number), holdout, or auto (5 folds under 10,000 rows, else a holdout split).")
@click.option("--estimator", "estimators", multiple=True,
              help="A family to search (repeatable): linear, extra_trees, random_forest, "
                   "hist_gradient_boosting, knn, svm.")
@click.option("--experiment", help="The experiment of its runs.")
@click.option("--register", metavar="NAME", help="Register the best model under NAME.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials run at once (a local process pool, or the Dask cluster of --executor).")
@click.option("--executor", help="Where trials run: local (default) or dask://HOST:PORT.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def automl_command(data: str, target: str, budget: float, task: str, metric: str | None, cv: str,
                   estimators: tuple[str, ...], experiment: str | None, register: str | None,
                   seed: int | None, workers: int, executor: str | None, as_json: bool) -> None:
    """Search model families for TARGET in DATA (.csv or .parquet) for --budget seconds;
    every candidate is a run, the best is refit (and registered with --register)."""
    import pandas as pd

    path = Path(data)
    if not path.is_file():
        raise click.BadParameter(f"{data}: no such file.", param_hint="DATA")
    frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    if target not in frame.columns:
        raise cellops.InvalidArgumentError(f"{data} has no column {target!r}; its columns: "
                                           f"{', '.join(map(str, frame.columns[:20]))}.")
    result = cellops.automl(frame.drop(columns=[target]), frame[target], task=task, metric=metric,
                            time_budget=budget, cv=int(cv) if cv.isdigit() else cv,
                            estimators=list(estimators) or None,
                            random_state=seed, experiment=experiment, register=register,
                            workers=workers, executor=executor)
    if as_json:
        echo_json({"task": result.task, "metric": result.metric, "best_score": result.best_score,
                   "best_params": result.best_params, "best_run": result.best_run,
                   "run_id": result.run_id, "trials": result.trials, "elapsed_s": result.elapsed,
                   "model_version": result.model_version.version if result.model_version else None,
                   "leaderboard": result.leaderboard.head(20).to_dict("records")})
        return
    board = result.leaderboard.head(10)
    click.echo(table(["#", "estimator", f"CV {result.metric}", "± std", "fit s", "run"],
                     [[r["rank"], r["estimator"], f"{r['cv_mean']:.4f}", f"{r['cv_std']:.4f}",
                       f"{r['fit_time_s']:.2f}", str(r["run_id"])[:8]] for r in board.to_dict("records")]))
    click.echo(f"\n{result.trials} trials in {result.elapsed:.1f} s; best {result.best_params['estimator']} "
               f"{result.metric}={result.best_score:.4f} (run {str(result.best_run)[:8]}, search run "
               f"{result.run_id[:8]})"
               + (f"; registered {result.model_version.name} v{result.model_version.version}"
                  if result.model_version else ""))
