"""Sweeps: one notebook over a grid (or a random sample) of parameters, trials in parallel."""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import InvalidArgumentError
from ..execution.cachekey import notebook_fingerprint
from ..execution.executors import make_executor
from ..execution.parameters import check_parameters
from ..execution.worker import Report, execute_step, make_task
from ..tracking.api import get_run, start_run
from ..tracking.run import Run
from ..workspaces import workspace


@dataclass
class SweepResult:
    run_id: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # params, run_id, status, metrics

    def ranked(self, metric: str, goal: str = "max") -> list[dict[str, Any]]:
        """Finished trials best first by ``metric``; trials without it last."""
        def key(t: dict[str, Any]) -> tuple:
            v = t["metrics"].get(metric)
            missing = v is None or v != v
            return (missing, -v if (not missing and goal == "max") else (v if not missing else 0))

        return sorted(self.trials, key=key)


@dataclass
class Trial:
    """One combination of a sweep, while it runs."""

    index: int
    run: Run
    combo: dict[str, Any]


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["alpha=0.1,0.5", "depth=3,5"]`` -> ``{"alpha": [0.1, 0.5], "depth": [3, 5]}``.

    Each value is read as YAML (``3`` is a number, ``true`` a bool), with the limits of
    :mod:`cellops.yamldoc`; text that is not YAML stays text."""
    from ..yamldoc import YamlError, load_yaml

    def value(text: str) -> Any:
        if not text.strip():
            return ""
        try:
            return load_yaml(text).data
        except YamlError as exc:
            if not exc.syntax:
                raise InvalidArgumentError(f"-p {spec!r}: {exc.message}.") from None
            return text

    grid: dict[str, list[Any]] = {}
    for spec in specs:
        if "=" not in spec:
            raise InvalidArgumentError(f"-p takes name=v1,v2,..., got {spec!r}.")
        name, raw = spec.split("=", 1)
        values = [value(v) for v in raw.split(",")]
        if not name.strip() or not values:
            raise InvalidArgumentError(f"-p {spec!r} names no parameter or no values.")
        grid[name.strip()] = values
    return grid


def expand(grid: dict[str, list[Any]], random_n: int | None = None,
           seed: int = 0) -> list[dict[str, Any]]:
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if random_n is not None:
        if random_n < 1:
            raise InvalidArgumentError("--random takes a positive number of trials.")
        combos = random.Random(seed).sample(combos, min(random_n, len(combos)))
    return combos


def finish_trial(trial: Run, index: int, combo: dict[str, Any], report: Report) -> dict[str, Any]:
    """End a trial's run from its worker report; return its record (params, status, metrics)."""
    if report.output:
        trial.attach(Path(report.output), "output.ipynb")
    error = report.error(f"trial-{index}")
    trial.end("FINISHED" if error is None else "FAILED", error=str(error) if error else None)
    return {"trial": index, "run_id": trial.id, "params": combo,
            "status": "FINISHED" if error is None else "FAILED",
            "metrics": get_run(trial.id).metrics, "error": str(error) if error else None}


def record_best(run: Any, result: SweepResult, metric: str | None, goal: str) -> dict | None:
    """Tag ``run`` with the best finished trial by ``metric`` and copy that trial's metrics to it."""
    if not metric:
        return None
    best = next((t for t in result.ranked(metric, goal)
                 if t["status"] == "FINISHED" and t["metrics"].get(metric) is not None), None)
    if best is None:
        return None
    run.set_tags({"sweep.best_run": best["run_id"], "sweep.metric": metric, "sweep.goal": goal,
                  **{f"sweep.best.{k}": v for k, v in best["params"].items()}})
    run.log_metrics(best["metrics"])
    return best


def run_sweep(
    notebook: str | Path,
    grid: dict[str, list[Any]] | Iterable[str],
    *,
    random_n: int | None = None,
    workers: int = 1,
    executor: str | None = None,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    name: str | None = None,
    cwd: str | Path | None = None,
    metric: str | None = None,
    goal: str = "max",
    progress: Callable[[str], None] | None = print,
    allow_unknown: bool = False,
) -> SweepResult:
    """Run ``notebook`` once per parameter combination, as trials under one sweep run.

    Every swept (and fixed) parameter must be declared in the notebook's ``parameters``
    cell, or the trials would all run with its defaults: an unknown name raises
    :class:`~cellops.errors.UnknownParameterError` before anything runs, unless
    ``allow_unknown`` (then the trials are tagged ``params.undeclared``).

    Trials run with ``cwd`` (default: the current directory) as working directory, as
    papermill does; ``random_n`` picks that many combinations of the grid at random.
    With ``metric``, the sweep run is tagged with the best trial (``goal`` max or min)
    and gets that trial's metrics.
    """
    say = progress or (lambda _m: None)
    nb_path = Path(notebook).absolute()
    if not nb_path.is_file():
        raise InvalidArgumentError(f"No notebook at {str(nb_path)!r}.")
    workdir = str(Path(cwd).absolute()) if cwd else os.getcwd()
    grid = dict(grid) if isinstance(grid, dict) else parse_grid(grid)
    if not grid:
        raise InvalidArgumentError("A sweep needs at least one -p name=v1,v2,...")
    combos = expand(grid, random_n)
    undeclared = check_parameters(nb_path, {**(parameters or {}), **grid},
                                  allow_unknown=allow_unknown,
                                  hint="--allow-unknown-params (allow_unknown=True)")
    tags = {"params.undeclared": ", ".join(undeclared)} if undeclared else {}
    _, kernel = notebook_fingerprint(nb_path)
    ws = workspace()
    pool = make_executor(executor, workers)  # an unreachable cluster fails before any run
    sweep = start_run(name=name or nb_path.stem, kind="sweep", activate=False, source=nb_path,
                      params={k: ",".join(map(str, v)) for k, v in grid.items()},
                      tags={"sweep.notebook": str(nb_path), "sweep.cwd": workdir,
                            "sweep.trials": len(combos)})
    out_dir = ws.path / "pipeline-outputs" / sweep.id
    out_dir.mkdir(parents=True, exist_ok=True)
    result = SweepResult(sweep.id)
    say(f"sweep {sweep.short_id}: {len(combos)} trial(s) of {nb_path.name} on {workers} worker(s)")
    running: dict[Any, Trial] = {}
    try:
        for i, combo in enumerate(combos):
            params = {**(parameters or {}), **combo}
            run = start_run(name=f"trial-{i}", kind="trial", parent=sweep, params=params,
                            tags=tags, activate=False, source=nb_path)
            task = make_task(nb_path, out_dir / f"trial-{i}.ipynb", parameters=params,
                             kernel=kernel or "python3", cwd=workdir, timeout=timeout,
                             workspace_path=ws.path, run_id=run.id, **ws.shared_locations())
            running[pool.submit(execute_step, task)] = Trial(i, run, combo)
        while running:
            for handle in pool.wait_any(list(running)):
                trial = running.pop(handle)
                record = finish_trial(trial.run, trial.index, trial.combo, pool.result(handle))
                result.trials.append(record)
                say(f"  trial-{trial.index} {trial.combo}: "
                    + ("ok" if record["status"] == "FINISHED" else f"FAILED: {record['error']}"))
    except BaseException as exc:
        for trial in running.values():
            trial.run.end("KILLED", error=f"sweep interrupted: {type(exc).__name__}")
        sweep.fail(exc)
        raise
    finally:
        pool.close()
    result.trials.sort(key=lambda t: t["trial"])
    record_best(sweep, result, metric, goal)
    failed = sum(t["status"] != "FINISHED" for t in result.trials)
    sweep.end("FINISHED" if failed == 0 else "FAILED",
              error=f"{failed} of {len(result.trials)} trials failed" if failed else None)
    return result
