"""AutoML whose every candidate is a run.

:func:`automl` searches scikit-learn model families within a time budget and returns the
best pipeline refit on all the data. The strategy is cost-aware, in the spirit of FLAML:

1. every family is tried first with its cheap default configuration, cheapest family
   first (linear models, then trees, then boosting; k-NN and SVMs on small data only);
2. then, until the budget is spent, new configurations are drawn for the families that
   did best so far — around the family's best configuration (a local step) or anywhere
   in its space — and each is first scored on a subsample of the rows (successive
   halving): only one that does as well as the family's best at that size is scored on
   all of them.

Before a trial starts, its cost is estimated from the family's last fit; a trial that
would not finish in the budget is not started, and one that runs over is stopped between
folds, so the budget holds within about one fold's fit.

Every trial is a child run (kind ``trial``) of one parent run (kind ``automl``): its
params, CV scores and fit time. The parent holds the leaderboard (``leaderboard.csv``),
the best score and params; ``register="name"`` registers the best pipeline with its
signature. An interrupt (KeyboardInterrupt, a kernel interrupt) stops the search: the
best so far is refit and returned, and the parent is marked KILLED with its leaderboard.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import InvalidArgumentError

CLASSIFICATION, REGRESSION = "classification", "regression"
HOLDOUT_ROWS = 10_000  # from this many rows cv="auto" scores on one holdout split


@dataclass
class Trial:
    family: str
    params: dict[str, Any]
    fraction: float
    scores: list[float]
    fit_time: float
    run_id: str | None = None
    error: str | None = None

    @property
    def mean(self) -> float:
        return float(sum(self.scores) / len(self.scores)) if self.scores else float("nan")

    @property
    def std(self) -> float:
        if len(self.scores) < 2:
            return 0.0
        m = self.mean
        return float(math.sqrt(sum((s - m) ** 2 for s in self.scores) / (len(self.scores) - 1)))


@dataclass
class AutoMLResult:
    """What :func:`automl` found: ``best_estimator`` (refit on all the data), its
    ``best_params``, ``best_score`` (mean CV score), ``best_run`` (the trial's run id),
    the ``leaderboard`` (a DataFrame, best first) and the parent ``run_id``."""

    task: str
    metric: str
    best_estimator: Any
    best_params: dict[str, Any]
    best_score: float
    best_run: str | None
    leaderboard: Any
    run_id: str | None
    trials: int
    elapsed: float
    interrupted: bool = False
    model_version: Any = None
    notes: list[str] = field(default_factory=list)
    shown: bool = False  # the leaderboard is already on screen (%automl drew it live)

    def __repr__(self) -> str:
        best = self.leaderboard.iloc[0] if len(self.leaderboard) else None
        return (f"<AutoMLResult {self.task}: best {best['estimator'] if best is not None else '—'} "
                f"{self.metric}={self.best_score:.4g} after {self.trials} trials in {self.elapsed:.0f} s"
                + (" (interrupted)" if self.interrupted else "") + ">")

    def _repr_html_(self) -> str:
        if self.shown:
            import html

            return f"<code>{html.escape(repr(self))}</code>"
        return leaderboard_html(self.leaderboard, self.metric, done=True,
                                note=f"{self.trials} trials in {self.elapsed:.1f} s"
                                     + (" — interrupted" if self.interrupted else ""))


# -- families ----------------------------------------------------------------------------------
# name -> (task -> estimator factory, default params, sampler(rng) -> params, scaled inputs,
#          one-hot categories, relative cost, largest data it is tried on)
def _families(task: str) -> dict[str, dict[str, Any]]:
    from sklearn import ensemble, linear_model, neighbors, svm

    clf = task == CLASSIFICATION

    def loguniform(rng: Any, lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return {
        "linear": {
            "make": (lambda p: linear_model.LogisticRegression(max_iter=2000, **p)) if clf
            else (lambda p: linear_model.Ridge(**p)),
            "default": {"C": 1.0} if clf else {"alpha": 1.0},
            "sample": (lambda r: {"C": loguniform(r, 1e-3, 1e3)}) if clf
            else (lambda r: {"alpha": loguniform(r, 1e-4, 1e3)}),
            "scaled": True, "onehot": True, "cost": 1, "max_rows": None},
        "extra_trees": _forest(ensemble.ExtraTreesClassifier if clf else ensemble.ExtraTreesRegressor,
                               clf, cost=3),
        "random_forest": _forest(ensemble.RandomForestClassifier if clf
                                 else ensemble.RandomForestRegressor, clf, cost=4),
        "hist_gradient_boosting": {
            "make": lambda p: (ensemble.HistGradientBoostingClassifier if clf
                               else ensemble.HistGradientBoostingRegressor)(**p),
            "default": {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31,
                        "min_samples_leaf": 20, "l2_regularization": 0.0},
            "sample": lambda r: {"learning_rate": loguniform(r, 0.01, 0.3),
                                 "max_iter": int(r.choice([50, 100, 200, 400])),
                                 "max_leaf_nodes": int(r.choice([7, 15, 31, 63, 127])),
                                 "min_samples_leaf": int(r.choice([5, 10, 20, 40, 80])),
                                 "l2_regularization": float(r.choice([0.0, 0.01, 0.1, 1.0]))},
            "scaled": False, "onehot": False, "cost": 2, "max_rows": None},
        "knn": {
            "make": lambda p: (neighbors.KNeighborsClassifier if clf else neighbors.KNeighborsRegressor)(**p),
            # Distances on standardised columns, or on the columns as they are (pixels, or
            # any columns that already share a scale, lose by standardising).
            "default": {"n_neighbors": 5, "weights": "uniform", "scale": True},
            "sample": lambda r: {"n_neighbors": int(r.choice([3, 5, 9, 15, 25, 41])),
                                 "weights": str(r.choice(["uniform", "distance"])),
                                 "scale": bool(r.choice([True, False]))},
            "scaled": True, "onehot": True, "cost": 1, "max_rows": 20_000},
        "svm": {
            "make": (lambda p: svm.SVC(**p)) if clf else (lambda p: svm.SVR(**p)),
            "default": {"C": 1.0, "gamma": "scale"},
            "sample": lambda r: {"C": loguniform(r, 1e-2, 1e3), "gamma": str(r.choice(["scale", "auto"]))},
            "scaled": True, "onehot": True, "cost": 3, "max_rows": 5_000},
    }


def _forest(estimator: Any, clf: bool, cost: int) -> dict[str, Any]:
    """A family of bagged trees (random forest, extra trees): the same space for both."""
    return {"make": lambda p: estimator(n_jobs=1, **p),
            "default": {"n_estimators": 50, "max_features": "sqrt" if clf else 1.0, "min_samples_leaf": 1},
            "sample": lambda r: {"n_estimators": int(r.choice([50, 100, 200, 400])),
                                 "max_features": float(r.choice([0.2, 0.4, 0.6, 0.8, 1.0])),
                                 "min_samples_leaf": int(r.choice([1, 2, 4, 8]))},
            "scaled": False, "onehot": False, "cost": cost, "max_rows": None}


def _preprocessor(frame: Any, scaled: bool, onehot: bool) -> Any:
    """Missing values imputed; categories one-hot (or ordinal, for trees); scaled numbers
    where the family needs them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    categorical = [c for c in frame.columns if frame[c].dtype.kind in "OUSb" or str(frame[c].dtype) == "category"]
    numeric = [c for c in frame.columns if c not in categorical]
    parts = []
    if numeric:
        steps = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scaled else [])
        parts.append(("numeric", make_pipeline(*steps), numeric))
    if categorical:
        encoder = (OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False) if onehot
                   else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       encoded_missing_value=-1))
        parts.append(("categorical", make_pipeline(
            SimpleImputer(strategy="most_frequent"), encoder), categorical))
    return ColumnTransformer(parts, remainder="drop")


def _pipeline(family: dict[str, Any], params: dict[str, Any], frame: Any) -> Any:
    from sklearn.pipeline import Pipeline

    params = dict(params)
    scaled = params.pop("scale", family["scaled"])  # a family may make scaling a choice
    return Pipeline([("prepare", _preprocessor(frame, scaled, family["onehot"])),
                     ("model", family["make"](params))])


# -- the search --------------------------------------------------------------------------------
def automl(X: Any, y: Any, *, task: str = "auto", metric: str | None = None,
           time_budget: float = 60, cv: Any = "auto", estimators: Sequence[str] | None = None,
           groups: Any = None, random_state: int | None = None, experiment: str | None = None,
           register: str | None = None, progress: Callable[[Any], None] | None = None,
           name: str = "automl", executor: str | None = None, workers: int = 1) -> AutoMLResult:
    """Search model families for ``X``, ``y`` within ``time_budget`` seconds (see the
    module's docstring). ``task``: "auto", "classification" or "regression"; ``metric``: a
    scikit-learn scorer name (default roc_auc for two classes, accuracy for more, r2 for
    regression); ``cv``: "auto" (5 folds under 10,000 rows, else one 80/20 holdout split,
    as FLAML does), a number of folds, "holdout", or a splitter (``groups`` for group
    splitters);
    ``estimators``: families to search (linear, extra_trees, random_forest,
    hist_gradient_boosting, knn, svm). ``progress`` is called with the leaderboard after
    each trial (the ``%automl`` magic draws it live). ``workers`` > 1 runs that many trials
    at once in a local process pool, or on a Dask cluster with
    ``executor="dask://HOST:PORT"`` (the workspace's executors); runs are still written by
    this process."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold, check_cv

    from ..tracking import start_run

    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(columns=lambda c: f"x{c}")
    frame.columns = [str(c) for c in frame.columns]
    target = np.asarray(y)
    if len(frame) != len(target):
        raise InvalidArgumentError(f"X has {len(frame)} rows and y {len(target)}: they must match.")
    if len(frame) < 10:
        raise InvalidArgumentError("AutoML needs at least 10 rows.")
    if pd.isna(target).any():
        raise InvalidArgumentError(f"y has {int(pd.isna(target).sum())} missing value(s): drop those rows.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers is 1 or more, not {workers!r}.")
    if not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise InvalidArgumentError(f"time_budget is a number of seconds > 0, not {time_budget!r}.")
    task = _task(task, target)
    classes = np.unique(target) if task == CLASSIFICATION else None
    if classes is not None and len(classes) < 2:
        raise InvalidArgumentError("y has one class only: there is nothing to learn.")
    metric = metric or ("roc_auc" if classes is not None and len(classes) == 2 else
                        "accuracy" if task == CLASSIFICATION else "r2")
    scorer = _scorer(metric)
    families = _families(task)
    chosen = list(estimators) if estimators is not None else list(families)
    unknown = [e for e in chosen if e not in families]
    if unknown:
        raise InvalidArgumentError(f"No estimator family {', '.join(map(repr, unknown))}; there are "
                                   f"{', '.join(families)}.")
    families = {k: v for k, v in families.items() if k in chosen
                and (v["max_rows"] is None or len(frame) <= v["max_rows"])}
    if not families:
        raise InvalidArgumentError("None of the chosen families suits this much data (knn and svm "
                                   "are for small data): add linear or tree families.")
    if cv == "auto":  # as FLAML: folds on small data, one holdout split on large data
        cv = 5 if len(frame) < HOLDOUT_ROWS else "holdout"
    if cv == "holdout":
        from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

        splitter = (StratifiedShuffleSplit(1, test_size=0.2, random_state=random_state or 0)
                    if task == CLASSIFICATION else ShuffleSplit(1, test_size=0.2, random_state=random_state or 0))
    elif isinstance(cv, int) and not isinstance(cv, bool):
        if cv < 2:
            raise InvalidArgumentError(f"cv is 2 or more folds, 'holdout', 'auto' or a splitter; not {cv!r}.")
        splitter = (StratifiedKFold(cv, shuffle=True, random_state=random_state or 0)
                    if task == CLASSIFICATION else KFold(cv, shuffle=True, random_state=random_state or 0))
    elif isinstance(cv, str):
        raise InvalidArgumentError(f"cv is a number of folds, 'holdout', 'auto' or a splitter; not {cv!r}.")
    else:
        splitter = check_cv(cv)
    folds = list(splitter.split(frame, target, groups))
    rng = np.random.default_rng(random_state)
    started = time.perf_counter()
    deadline = started + float(time_budget)
    trials: list[Trial] = []
    # The parent is the active run while the search runs (nested under the caller's active
    # run, if any): a model registered from it records it.
    parent = start_run(name=name, experiment=experiment, kind="automl",
                       params={"task": task, "metric": metric, "time_budget": time_budget,
                               "cv": len(folds), "estimators": ",".join(families),
                               "rows": len(frame), "columns": frame.shape[1]})
    interrupted = False
    notes: list[str] = []
    pool = None
    if int(workers) > 1 or executor not in (None, "local"):
        from ..execution.executors import make_executor

        try:
            pool = make_executor(executor, int(workers))
        except BaseException:
            parent.end("FAILED", error="the executor could not be started")
            raise
    blas = _one_blas_thread()
    try:
        if pool is not None:
            # Local workers share this machine's cores: each trial's OpenMP threads get an
            # equal share of them (a Dask worker's own machine keeps all of its cores).
            threads = (max(1, _cores() // int(workers))
                       if executor in (None, "local") else None)
            _search_parallel(pool, int(workers), parent, families, task, metric, frame, target,
                             folds, deadline, trials, progress, rng, threads)
        for family in sorted(families, key=lambda f: families[f]["cost"]) if pool is None else ():
            _trial(parent, family, families[family], dict(families[family]["default"]), 1.0,
                   frame, target, folds, scorer, deadline, trials, progress)
        while pool is None and time.perf_counter() < deadline:
            family, params = _propose(families, trials, rng)
            fraction = 1.0
            if len(frame) >= 2000:  # successive halving: a quarter of the rows first
                fraction = 0.25
            trial = _trial(parent, family, families[family], params, fraction, frame, target, folds,
                           scorer, deadline, trials, progress)
            if trial is None:
                if not _room_for_any(families, trials, deadline):
                    break
                continue
            if fraction < 1.0 and not trial.error and _promising(trial, trials):
                _trial(parent, family, families[family], params, 1.0, frame, target, folds, scorer,
                       deadline, trials, progress)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted: the best configuration so far was kept")
    finally:
        if pool is not None:
            pool.close()
        blas.restore_original_limits()
    full = [t for t in trials if t.fraction == 1.0 and t.scores and not t.error]
    board = leaderboard(trials)
    if not full:
        parent.log_text(board.to_csv(index=False), "leaderboard.csv")
        parent.end("KILLED" if interrupted else "FAILED",
                   error=None if interrupted else "no configuration could be scored in the budget")
        raise InvalidArgumentError("No configuration was scored on all the rows within the time budget: "
                                   "give it more time_budget, or fewer rows or folds.")
    best = max(full, key=lambda t: t.mean)
    estimator = _pipeline(families[best.family], best.params, frame)
    with warnings.catch_warnings(), _one_blas_thread(), _openmp_threads(_idle_cores()):
        warnings.simplefilter("ignore")
        estimator.fit(frame, target)
    elapsed = time.perf_counter() - started
    parent.log_params({f"best.{k}": v for k, v in {"estimator": best.family, **best.params}.items()})
    parent.log_metrics({f"best_{metric}": best.mean, "trials": float(len(trials)),
                        "elapsed_s": elapsed})
    parent.set_tag("automl.best_run", best.run_id or "")
    parent.log_text(board.to_csv(index=False), "leaderboard.csv")
    version = None
    if register:
        from ..registry import register_model

        version = register_model(estimator, register, X_sample=frame.head(50),
                                 description=f"AutoML best of {len(trials)} trials: {best.family}")
    parent.end("KILLED" if interrupted else "FINISHED")
    return AutoMLResult(task, metric, estimator, dict(best.params) | {"estimator": best.family},
                        best.mean, best.run_id, board, parent.id, len(trials), elapsed, interrupted,
                        version, notes)


def _task(task: str, target: Any) -> str:
    import numpy as np

    if task in (CLASSIFICATION, REGRESSION):
        return task
    if task != "auto":
        raise InvalidArgumentError(f"task is 'auto', 'classification' or 'regression', not {task!r}.")
    if target.dtype.kind in "bOUS":
        return CLASSIFICATION
    whole = target.dtype.kind in "iu" or bool(np.all(target == np.round(target)))
    return CLASSIFICATION if whole and len(np.unique(target)) <= 20 else REGRESSION


def _scorer(metric: str) -> Any:
    from sklearn.metrics import get_scorer

    try:
        return get_scorer(metric)
    except (ValueError, KeyError):
        raise InvalidArgumentError(f"{metric!r} is not a scikit-learn scorer name (accuracy, roc_auc, "
                                   "f1, r2, neg_mean_absolute_error, ...).") from None


def _estimated_cost(family: str, trials: list[Trial], fraction: float, base: dict[str, Any]) -> float:
    past = [t for t in trials if t.family == family and t.scores]
    if not past:
        return 0.0
    last = past[-1]
    size = _size(base) / max(_size(last.params), 1e-9) if base else 1.0
    return last.fit_time * (fraction / last.fraction) * size


def _size(params: dict[str, Any]) -> float:
    return float(params.get("n_estimators", params.get("max_iter", 1)))


def _trial(parent: Any, family: str, spec: dict[str, Any], params: dict[str, Any], fraction: float,
           frame: Any, target: Any, folds: list[tuple[Any, Any]], scorer: Any, deadline: float,
           trials: list[Trial], progress: Callable[[Any], None] | None) -> Trial | None:
    """Cross-validate one configuration (on ``fraction`` of each training fold) as a child
    run; None when it would not fit in the budget (nothing is logged then)."""
    import numpy as np

    from ..tracking import start_run

    now = time.perf_counter()
    if now + _estimated_cost(family, trials, fraction, params) > deadline:
        return None
    run = start_run(name=f"{family}", kind="trial", parent=parent, activate=False,
                    params={"estimator": family, **params, "fraction": fraction})
    scores: list[float] = []
    error = None
    t0 = time.perf_counter()
    rng = np.random.default_rng(len(trials))
    try:
        with _openmp_threads(_idle_cores()):
            for train, test in folds:
                if time.perf_counter() > deadline:
                    error = "stopped: the time budget ran out"
                    break
                if fraction < 1.0:
                    train = rng.choice(train, max(int(len(train) * fraction), 50), replace=False)
                model = _pipeline(spec, params, frame)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(frame.iloc[train], target[train])
                    scores.append(float(scorer(model, frame.iloc[test], target[test])))
    except KeyboardInterrupt:
        run.end("KILLED")
        raise
    except Exception as exc:  # noqa: BLE001 - a configuration that fails is a failed trial
        error = f"{type(exc).__name__}: {exc}"
    fit_time = time.perf_counter() - t0
    trial = _finish(run, Trial(family, params, fraction, scores, fit_time, run.id, error))
    trials.append(trial)
    if progress is not None:
        progress(leaderboard(trials))
    return trial


def evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """One trial's cross-validation, in a worker (a local process or a Dask worker): the
    fold scores, the fit time, or the error. Stops between folds when its time is up."""
    import numpy as np

    from ..execution.executors import shared

    start = time.perf_counter()
    stop = start + job["seconds_left"]
    family = _families(job["task"])[job["family"]]
    scorer = _scorer(job["metric"])
    data = shared(job["data"])
    frame, target = data["frame"], data["target"]
    rng = np.random.default_rng(job["seed"])
    scores: list[float] = []
    error = None
    try:
        with _one_blas_thread(), _openmp_threads(job.get("threads")):
            for train, test in data["folds"]:
                if time.perf_counter() > stop:
                    error = "stopped: the time budget ran out"
                    break
                if job["fraction"] < 1.0:
                    train = rng.choice(train, max(int(len(train) * job["fraction"]), 50), replace=False)
                model = _pipeline(family, job["params"], frame)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(frame.iloc[train], target[train])
                    scores.append(float(scorer(model, frame.iloc[test], target[test])))
    except Exception as exc:  # noqa: BLE001 - a configuration that fails is a failed trial
        error = f"{type(exc).__name__}: {exc}"
    return {"scores": scores, "fit_time": time.perf_counter() - start, "error": error}


def _one_blas_thread() -> Any:
    """Limit BLAS (OpenBLAS, MKL) to one thread while trials fit, as a context manager.

    OpenBLAS's threads keep spinning after a linear model's BLAS calls, and the OpenMP
    threads of the tree models (HistGradientBoosting, forests' predict) then fight them for
    the cores: measured on 2 cores, a HistGradientBoosting fit after a logistic regression
    took 0.68 s instead of 0.18 s on an idle machine, and with one other busy process a
    search given 6 s took 14 to 50 s (3 trials) instead of 6 s (11 to 22 trials). The models
    tried here are small enough that one BLAS thread costs nothing measurable; OpenMP's
    threads are set apart (:func:`_idle_cores`)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _idle_cores() -> int:
    """The cores other processes leave free, at least one: the OpenMP threads a trial fits
    with. Other processes count by the larger of what they did over the last trial
    (:func:`_busy_elsewhere`) and the 1-minute load average less this process: quick to
    give way to a process that starts, slow to take the cores back from one that stops
    or pauses between bursts (a test suite's other worker, a notebook's cells).

    OpenMP's threads wait for each other at the end of every parallel region, and a tree
    model runs thousands of small ones: when another process holds one of the cores, each
    wait lasts until the descheduled thread runs again. Measured on 2 cores beside two busy
    processes: a 6 s search took up to 93 s with two threads, 6.0 s with one (16-17 trials);
    so a core too many costs far more than one too few. On a machine with nothing else
    running, every core is used."""
    cores = _cores()
    seen = [_busy_elsewhere()]
    try:
        seen.append(max(0.0, os.getloadavg()[0] - 1.0))
    except (AttributeError, OSError):  # no load average (Windows)
        pass
    others = max((x for x in seen if x is not None), default=0.0)
    return max(1, min(cores, int(cores - others + 0.5)))


_SAMPLE_S = 0.1  # the first reading's window: ten clock ticks per core
_FRESH_S = 30.0  # a reading older than this is not "lately"
_last_sample: tuple[float, float, int, int] | None = None  # (wall, own CPU s, busy, total ticks)
_last_busy = 0.0  # what the last reading found


def _cpu_ticks() -> tuple[int, int] | None:
    """Busy and total clock ticks so far of the cores this process may run on, from Linux's
    /proc/stat; None elsewhere."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    busy = total = 0
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if not line.startswith("cpu") or line[3] == " ":
                    continue  # the all-cores line and everything that is not a core
                name, *fields = line.split()
                if allowed is not None and int(name[3:]) not in allowed:
                    continue
                # user nice system idle iowait irq softirq steal (guest time is in user)
                ticks = [int(v) for v in fields[:8]]
                busy += sum(ticks) - ticks[3] - ticks[4]
                total += sum(ticks)
    except (OSError, ValueError, IndexError):
        return None
    return (busy, total) if total else None


def _busy_elsewhere() -> float | None:
    """How many cores other processes kept busy lately: from /proc/stat since the previous
    reading (the last trial, in a search), or over the next 0.1 s when there was none in
    the last 30 s, less this process's own CPU time over the same span; a reading less than
    0.1 s after the previous one repeats it. Unlike the load average (a 1-minute decaying
    mean), it sees a process that just started or stopped. None where there is no
    /proc/stat."""
    global _last_sample, _last_busy
    now, before = time.monotonic(), _last_sample
    if before is not None and now - before[0] < _SAMPLE_S:
        return _last_busy
    now_ticks = _cpu_ticks()
    if now_ticks is None:
        return None
    own = _own_cpu_s()
    if before is None or now - before[0] > _FRESH_S:
        before = (now, own, *now_ticks)
        time.sleep(_SAMPLE_S)
        now_ticks = _cpu_ticks() or now_ticks
        now, own = time.monotonic(), _own_cpu_s()
    _last_sample = (now, own, *now_ticks)
    wall = now - before[0]
    busy, total = now_ticks[0] - before[2], now_ticks[1] - before[3]
    if wall > 0 and total > 0:
        cores = total / (wall * _ticks_per_s())  # the cores the ticks came from
        _last_busy = max(0.0, busy / total * cores - (own - before[1]) / wall)
    return _last_busy


def _own_cpu_s() -> float:
    """CPU seconds this process (all its threads) used so far."""
    t = os.times()
    return t.user + t.system


def _ticks_per_s() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def _openmp_threads(threads: int | None) -> Any:
    """At most ``threads`` OpenMP threads (all of them when None), as a context manager."""
    import contextlib

    from threadpoolctl import threadpool_limits

    return contextlib.nullcontext() if threads is None else threadpool_limits(limits=threads, user_api="openmp")


def _search_parallel(pool: Any, workers: int, parent: Any, families: dict[str, dict[str, Any]],
                     task: str, metric: str, frame: Any, target: Any, folds: list[tuple[Any, Any]],
                     deadline: float, trials: list[Trial], progress: Callable[[Any], None] | None,
                     rng: Any, threads: int | None) -> None:
    """The search with ``workers`` trials at once: the defaults first, then proposals as
    workers free up; a promising subsample trial queues its full-size trial."""
    from ..tracking import start_run

    from ..execution.executors import share

    # The rows go to the workers once, not with every trial.
    data = share(pool, {"frame": frame, "target": target, "folds": folds})
    queue: list[tuple[str, dict[str, Any], float]] = [
        (f, dict(families[f]["default"]), 1.0) for f in sorted(families, key=lambda f: families[f]["cost"])]
    running: dict[Any, tuple[str, dict[str, Any], float, Any]] = {}
    try:
        while True:
            now = time.perf_counter()
            while len(running) < workers and now < deadline:
                if queue:
                    family, params, fraction = queue.pop(0)
                else:
                    family, params = _propose(families, trials, rng)
                    fraction = 0.25 if len(frame) >= 2000 else 1.0
                if now + _estimated_cost(family, trials, fraction, params) > deadline:
                    if not queue and not _room_for_any(families, trials, deadline):
                        break
                    continue
                run = start_run(name=family, kind="trial", parent=parent, activate=False,
                                params={"estimator": family, **params, "fraction": fraction})
                job = {"task": task, "family": family, "params": params, "fraction": fraction,
                       "metric": metric, "data": data,
                       "seed": len(trials) + len(running), "seconds_left": deadline - now,
                       "threads": threads}
                running[pool.submit(evaluate, job)] = (family, params, fraction, run)
            if not running:
                return
            for handle in pool.wait_any(list(running), timeout=None):
                family, params, fraction, run = running.pop(handle)
                try:
                    out = pool.result(handle)
                except Exception as exc:  # noqa: BLE001 - a lost worker fails its trial
                    out = {"scores": [], "fit_time": 0.0, "error": f"{type(exc).__name__}: {exc}"}
                trial = _finish(run, Trial(family, params, fraction, out["scores"], out["fit_time"],
                                           run.id, out["error"]))
                trials.append(trial)
                if progress is not None:
                    progress(leaderboard(trials))
                if fraction < 1.0 and not trial.error and _promising(trial, trials):
                    queue.insert(0, (family, params, 1.0))
            if time.perf_counter() >= deadline and not running:
                return
    except KeyboardInterrupt:
        for family, params, fraction, run in running.values():
            run.end("KILLED", error="interrupted")
        raise


def _finish(run: Any, trial: Trial) -> Trial:
    """Log a trial's scores on its run and end it."""
    if trial.error:
        trial.scores = []
    if trial.scores:
        run.log_metrics({"cv_mean": trial.mean, "cv_std": trial.std, "fit_time_s": trial.fit_time})
        for i, score in enumerate(trial.scores):
            run.log_metric("cv_score", score, step=i)
    run.end("FAILED" if trial.error and not trial.error.startswith("stopped") else
            "KILLED" if trial.error else "FINISHED", error=trial.error)
    return trial


def _propose(families: dict[str, dict[str, Any]], trials: list[Trial], rng: Any) -> tuple[str, dict[str, Any]]:
    """A family among the best so far (better ones more often), and a configuration near its
    best one (half the time) or anywhere in its space."""
    import numpy as np

    best: dict[str, Trial] = {}
    for t in trials:
        if t.fraction == 1.0 and t.scores and (t.family not in best or t.mean > best[t.family].mean):
            best[t.family] = t
    ranked = sorted(best, key=lambda f: -best[f].mean) or list(families)
    ranked = [f for f in ranked if f in families][:3] or list(families)
    weights = np.asarray([0.6, 0.3, 0.1][:len(ranked)])
    seen = {(t.family, repr(sorted(t.params.items()))) for t in trials}
    for _ in range(20):  # a configuration not tried yet
        family = ranked[int(rng.choice(len(ranked), p=weights / weights.sum()))]
        params = families[family]["sample"](rng)
        if family in best and rng.random() < 0.5:  # a local step: keep most of the best config
            params = {k: (params[k] if rng.random() < 0.4 else v) for k, v in best[family].params.items()}
        if (family, repr(sorted(params.items()))) not in seen:
            break
    return family, params


def _promising(trial: Trial, trials: list[Trial]) -> bool:
    """Is a subsample trial as good as its family's best subsample score?"""
    same = [t.mean for t in trials if t.family == trial.family and t.fraction == trial.fraction
            and t.scores and t is not trial]
    return not same or trial.mean >= max(same) - 1e-12


def _room_for_any(families: dict[str, dict[str, Any]], trials: list[Trial], deadline: float) -> bool:
    now = time.perf_counter()
    return any(now + _estimated_cost(f, trials, 0.25, families[f]["default"]) <= deadline for f in families)


def leaderboard(trials: list[Trial]) -> Any:
    """The trials scored on all the rows, best first: rank, estimator, params, CV mean and
    std, fit time, run id."""
    import pandas as pd

    rows = [{"estimator": t.family, "params": ", ".join(f"{k}={_short(v)}" for k, v in t.params.items()),
             "cv_mean": t.mean, "cv_std": t.std, "fit_time_s": t.fit_time, "run_id": t.run_id}
            for t in trials if t.fraction == 1.0 and t.scores]
    board = pd.DataFrame(rows, columns=["estimator", "params", "cv_mean", "cv_std", "fit_time_s", "run_id"])
    board = board.sort_values("cv_mean", ascending=False, kind="stable").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    return board


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def leaderboard_html(board: Any, metric: str, *, done: bool, note: str = "", limit: int = 15) -> str:
    """The leaderboard as static HTML (it reads the same without a kernel)."""
    import html

    cell = "padding:2px 8px;text-align:left;border-bottom:1px solid var(--jp-border-color2,#ddd)"
    head = "".join(f"<th style='{cell}'>{h}</th>" for h in ("#", "estimator", f"CV {html.escape(metric)}",
                                                            "± std", "fit s", "params", "run"))
    rows = "".join(
        f"<tr><td style='{cell}'>{r['rank']}</td><td style='{cell}'>{html.escape(r['estimator'])}</td>"
        f"<td style='{cell}'>{r['cv_mean']:.4f}</td><td style='{cell}'>{r['cv_std']:.4f}</td>"
        f"<td style='{cell}'>{r['fit_time_s']:.2f}</td><td style='{cell}'>{html.escape(r['params'])}</td>"
        f"<td style='{cell}'><code>{html.escape(str(r['run_id'])[:8])}</code></td></tr>"
        for r in board.head(limit).to_dict("records"))
    state = "done" if done else "searching…"
    return (f"<div class='cellops-automl' style='color:var(--jp-ui-font-color1,#222)'><b>AutoML</b> "
            f"({state}{', ' + html.escape(note) if note else ''})"
            f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")
