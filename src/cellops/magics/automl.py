"""Magics of AutoML: ``%automl``, with a live leaderboard."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import cellops
from cellops.modelsearch import leaderboard_html
from cellops.errors import CellopsError


@magics_class
class AutoML(Magics):
    """cellops AutoML magics."""

    @magic_arguments()
    @argument("data", help="A DataFrame variable holding the features and the target column.")
    @argument("--target", required=True, help="The column to predict.")
    @argument("--budget", type=float, default=60, help="Seconds to search (default 60).")
    @argument("--task", default="auto", help="auto, classification or regression.")
    @argument("--metric", help="A scikit-learn scorer name (default roc_auc, accuracy or r2).")
    @argument("--cv", default="auto", help="Folds (a number), holdout, or auto (the default).")
    @argument("--estimators", help="Comma-separated families: linear, extra_trees, random_forest, "
                                   "hist_gradient_boosting, knn, svm.")
    @argument("--register", help="Register the best model under this name.")
    @argument("--seed", type=int, help="Random seed.")
    @argument("--workers", type=int, default=1, help="Trials run at once (default 1).")
    @argument("--executor", help="Where trials run: local (default) or dask://HOST:PORT.")
    @line_magic
    def automl(self, line: str) -> Any:
        """Search model families for ``--target`` in a DataFrame for ``--budget`` seconds,
        showing the leaderboard as it grows: ``result = %automl df --target churned --budget 60``.
        Every candidate is a run; returns the AutoMLResult (interrupt the kernel to stop
        early: the best so far is kept)."""
        from IPython.display import HTML, display

        args = parse_argstring(self.automl, line)
        import pandas as pd

        frame = (self.shell.user_ns if self.shell is not None else {}).get(args.data)
        if not isinstance(frame, pd.DataFrame):
            raise UsageError(f"{args.data!r} is not a DataFrame variable of this notebook.")
        if args.target not in frame.columns:
            raise UsageError(f"{args.data} has no column {args.target!r}.")
        metric = args.metric or "score"
        live = display(HTML(leaderboard_html(pd.DataFrame(columns=[
            "rank", "estimator", "params", "cv_mean", "cv_std", "fit_time_s", "run_id"]), metric,
            done=False)), display_id=True)

        def progress(board: Any) -> None:
            live.update(HTML(leaderboard_html(board, metric, done=False,
                                              note=f"{len(board)} scored so far")))

        try:
            result = cellops.automl(
                frame.drop(columns=[args.target]), frame[args.target], task=args.task,
                metric=args.metric, time_budget=args.budget,
                cv=int(args.cv) if str(args.cv).isdigit() else args.cv,
                estimators=[e.strip() for e in args.estimators.split(",")] if args.estimators else None,
                random_state=args.seed, register=args.register, progress=progress,
                workers=args.workers, executor=args.executor)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        live.update(HTML(result._repr_html_()))
        result.shown = True  # the board above is the result: its own display is one line
        return result


MAGICS = [AutoML]
