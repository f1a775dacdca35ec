"""Tracking speed: cellops against MLflow on the same kind of SQLite file, side by side.

    pip install ".[bench]" && python benchmarks/bench_tracking.py

MLflow may also live in its own virtual environment (its pins can clash with
yours): ``--mlflow-python /path/to/venv/bin/python``. Each workload runs in a fresh
subprocess with a fresh workspace/database in a temporary folder, so imports,
caches and files never leak from one measurement into another.

Workloads (ratio targets from issue #2, absolute targets from issue #23):
  log_metric   10,000 log_metric calls in a loop, durable by the end of the run   >= 100x, <= 3 us a call
  log_batch    one log_metrics call with 10,000 values, durable                    (reported)
  create_runs  1,000 runs with 5 params + 5 metrics each, in two shapes:          >= 10x, <= 1 ms a run
               params given to start_run(params=...), and log_params after it
               (MLflow has only the second shape, so both compare with it)
  search       search_runs with a metric filter and order over those runs         >= 5x, <= 10 ms
  import       `import cellops` vs `import mlflow`, bytecode cached as after       <= 60 ms
               any first import (the median of 7 fresh interpreters)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anchor import add_mlflow_python, mlflow_missing, time_search

N_METRICS = 10_000
N_RUNS = 1_000
SEARCH_FILTER = "metrics.m0 > 0.5"
SEARCH_ORDER = ["metrics.m1 DESC"]


# -- workers (run in a subprocess) ---------------------------------------------
def _cellops_worker(workload: str, scale: float) -> dict[str, float]:
    import cellops

    cellops.init_workspace(os.getcwd())
    cellops.set_experiment("bench")
    n_metrics, n_runs = int(N_METRICS * scale), int(N_RUNS * scale)
    out: dict[str, float] = {}
    if workload == "log_metric":
        run = cellops.start_run()
        t = time.perf_counter()
        for i in range(n_metrics):
            cellops.log_metric("loss", 1.0 / (i + 1))
        cellops.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(run.metric_history("loss")) == n_metrics
    elif workload == "log_batch":
        run = cellops.start_run()
        values = {f"m{i}": float(i) for i in range(n_metrics)}
        t = time.perf_counter()
        cellops.log_metrics(values)
        cellops.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(run.metrics) == n_metrics
    elif workload in ("runs", "runs_start_params"):
        with_start = workload == "runs_start_params"
        t = time.perf_counter()
        for r in range(n_runs):
            params = {f"p{j}": r * j for j in range(5)}
            with cellops.start_run(name=f"r{r}", params=params if with_start else None) as run:
                if not with_start:
                    run.log_params(params)
                run.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000 for j in range(5)})
        out["create_seconds"] = time.perf_counter() - t
        if with_start:
            return out
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: cellops.search_runs(experiment="bench", filter=SEARCH_FILTER,
                                        order_by=SEARCH_ORDER)
        )
    return out


def _mlflow_worker(workload: str, scale: float) -> dict[str, float]:
    import logging

    import mlflow
    from mlflow.entities import Metric

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{os.getcwd()}/mlflow.db")
    exp_id = mlflow.set_experiment("bench").experiment_id
    client = mlflow.MlflowClient()
    n_metrics, n_runs = int(N_METRICS * scale), int(N_RUNS * scale)
    out: dict[str, float] = {}
    if workload == "log_metric":
        run = mlflow.start_run()
        t = time.perf_counter()
        for i in range(n_metrics):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        mlflow.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(client.get_metric_history(run.info.run_id, "loss")) == n_metrics
    elif workload == "log_batch":
        run = mlflow.start_run()
        ts = int(time.time() * 1000)
        metrics = [Metric(f"m{i}", float(i), ts, 0) for i in range(n_metrics)]
        t = time.perf_counter()
        for k in range(0, n_metrics, 1000):  # MLflow caps one log_batch at 1,000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[k:k + 1000])
        mlflow.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(client.get_run(run.info.run_id).data.metrics) == n_metrics
    elif workload == "runs":
        t = time.perf_counter()
        for r in range(n_runs):
            with mlflow.start_run(run_name=f"r{r}"):
                mlflow.log_params({f"p{j}": r * j for j in range(5)})
                mlflow.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000 for j in range(5)})
        out["create_seconds"] = time.perf_counter() - t
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: mlflow.search_runs(experiment_ids=[exp_id], filter_string=SEARCH_FILTER,
                                       order_by=SEARCH_ORDER, max_results=100_000)
        )
    return out


# -- driver ----------------------------------------------------------------------
def _spawn(python: str, system: str, workload: str, scale: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH")] if p
        )
        res = subprocess.run(
            [python, str(Path(__file__).resolve()), "--worker", system, workload, str(scale)],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=3600,
        )
    if res.returncode != 0:
        raise RuntimeError(f"{system} {workload} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _import_ms(python: str, module: str, repeat: int = 7) -> float:
    """Median time of ``import module`` in fresh interpreters, bytecode cached.

    The first, unmeasured run writes the ``__pycache__`` files a user's first
    import writes too; PYTHONDONTWRITEBYTECODE (set in some containers) would
    otherwise make every run compile every module, which no user's second import does.
    """
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    times = []
    for i in range(repeat + 1):
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env,
                             timeout=120)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        if i:
            times.append(float(res.stdout.strip()) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_mlflow_python(ap, "Python interpreter that has mlflow installed (default: this one)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="Scale the workload sizes (e.g. 0.1 for a quick look); ratios stay comparable")
    ap.add_argument("--json", metavar="FILE", help="Also write the figures to FILE as JSON")
    ap.add_argument("--worker", nargs=3, metavar=("SYSTEM", "WORKLOAD", "SCALE"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, workload, scale = args.worker
        fn = _cellops_worker if system == "cellops" else _mlflow_worker
        print(json.dumps(fn(workload, float(scale))))
        return 0

    if mlflow_missing(args.mlflow_python):
        return 2
    s = args.scale
    figures: dict[str, dict[str, float]] = {}
    for system, python in (("cellops", sys.executable), ("mlflow", args.mlflow_python)):
        print(f"measuring {system} ...", file=sys.stderr, flush=True)
        r = {}
        r["log_metric"] = _spawn(python, system, "log_metric", s)["seconds"]
        r["log_batch"] = _spawn(python, system, "log_batch", s)["seconds"]
        runs = _spawn(python, system, "runs", s)
        r["create_runs"] = runs["create_seconds"]
        if system == "cellops":
            r["create_runs_start"] = _spawn(python, system, "runs_start_params", s)["create_seconds"]
        r["search"] = runs["search_seconds"]
        r["search_rows"] = runs["search_rows"]
        r["import_ms"] = _import_ms(python, system)
        figures[system] = r

    c, m = figures["cellops"], figures["mlflow"]
    if c["search_rows"] != m["search_rows"]:
        print(f"warning: search returned {c['search_rows']:.0f} rows in cellops and "
              f"{m['search_rows']:.0f} in MLflow", file=sys.stderr)
    nm, nr = int(N_METRICS * s), int(N_RUNS * s)
    # (label, cellops, mlflow, unit, ratio target, absolute target in the unit shown)
    rows = [
        (f"log_metric x{nm:,}, per call", c["log_metric"] / nm * 1e6, m["log_metric"] / nm * 1e6,
         "us", 100, 3.0),
        (f"log_metrics batch of {nm:,}", c["log_batch"] * 1e3, m["log_batch"] * 1e3, "ms", None, None),
        ("create run, params to start_run, per run", c["create_runs_start"] / nr * 1e3,
         m["create_runs"] / nr * 1e3, "ms", 10, 1.0),
        ("create run, log_params after, per run", c["create_runs"] / nr * 1e3,
         m["create_runs"] / nr * 1e3, "ms", 10, 1.0),
        (f"search_runs filter+order over {nr:,}", c["search"] * 1e3, m["search"] * 1e3, "ms", 5, 10.0),
        ("import, bytecode cached", c["import_ms"], m["import_ms"], "ms", None, 60.0),
    ]
    print(f"\n{'workload':<42}{'unit':>5}{'cellops':>11}{'mlflow':>11}{'ratio':>9}  "
          f"{'target':<18}ok")
    print("-" * 100)
    for label, cv, mv, unit, ratio_target, limit in rows:
        ratio = mv / cv if cv > 0 else float("inf")
        wanted, ok = [], []
        if ratio_target is not None:
            wanted.append(f">= {ratio_target}x")
            ok.append(ratio >= ratio_target)
        if limit is not None:
            wanted.append(f"<= {limit:g} {unit}")
            ok.append(cv <= limit)
        verdict = ("yes" if all(ok) else "NO") if ok else ""
        print(f"{label:<42}{unit:>5}{cv:>11.3f}{mv:>11.3f}{ratio:>8.1f}x  {', '.join(wanted) or '(report)':<18}"
              f"{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
