"""Tracking speed: cellops against MLflow on the same kind of SQLite file, side by side.

    pip install ".[bench]" && python benchmarks/bench_tracking.py

MLflow may also live in its own virtual environment (its pins can clash with
yours): ``--mlflow-python /path/to/venv/bin/python``. Each workload runs in a fresh
subprocess with a fresh workspace/database in a temporary folder, so imports,
caches and files never leak from one measurement into another.

Workloads (targets from issue #2):
  log_metric   10,000 log_metric calls in a loop, durable by the end of the run   >= 100x
  log_batch    one log_metrics call with 10,000 values, durable                    (reported)
  create_runs  1,000 runs with 5 params + 5 metrics each                          >= 10x
  search       search_runs with a metric filter and order over those runs         >= 5x
  import       `import cellops` vs `import mlflow`                                 <= 150 ms
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

from anchor import add_mlflow_python, mlflow_missing

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
    elif workload == "runs":
        t = time.perf_counter()
        for r in range(n_runs):
            with cellops.start_run(name=f"r{r}") as run:
                run.log_params({f"p{j}": r * j for j in range(5)})
                run.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000 for j in range(5)})
        out["create_seconds"] = time.perf_counter() - t
        out["search_seconds"], out["search_rows"] = _time_search(
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
        out["search_seconds"], out["search_rows"] = _time_search(
            lambda: mlflow.search_runs(experiment_ids=[exp_id], filter_string=SEARCH_FILTER,
                                       order_by=SEARCH_ORDER, max_results=100_000)
        )
    return out


def _time_search(fn) -> tuple[float, float]:
    fn()  # warm-up: first query plans, imports pandas
    times, rows = [], 0
    for _ in range(5):
        t = time.perf_counter()
        df = fn()
        times.append(time.perf_counter() - t)
        rows = len(df)
    return statistics.median(times), float(rows)


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
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    times = []
    for _ in range(repeat):
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env,
                             timeout=120)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
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
        r["search"] = runs["search_seconds"]
        r["search_rows"] = runs["search_rows"]
        r["import_ms"] = _import_ms(python, system)
        figures[system] = r

    c, m = figures["cellops"], figures["mlflow"]
    if c["search_rows"] != m["search_rows"]:
        print(f"warning: search returned {c['search_rows']:.0f} rows in cellops and "
              f"{m['search_rows']:.0f} in MLflow", file=sys.stderr)
    nm, nr = int(N_METRICS * s), int(N_RUNS * s)
    rows = [
        (f"log_metric x{nm:,} in a loop (s)", c["log_metric"], m["log_metric"], ">= 100x"),
        (f"log_metrics batch of {nm:,} (s)", c["log_batch"], m["log_batch"], "(report)"),
        (f"create {nr:,} runs, 5 params + 5 metrics (s)", c["create_runs"], m["create_runs"], ">= 10x"),
        (f"search_runs filter+order over {nr:,} (s)", c["search"], m["search"], ">= 5x"),
        ("import (ms)", c["import_ms"], m["import_ms"], "<= 150 ms"),
    ]
    targets = {">= 100x": 100, ">= 10x": 10, ">= 5x": 5}
    print(f"\n{'workload':<44}{'cellops':>12}{'mlflow':>12}{'ratio':>10}  {'target':<10} ok")
    print("-" * 94)
    for label, cv, mv, target in rows:
        ratio = mv / cv if cv > 0 else float("inf")
        if target in targets:
            ok = "yes" if ratio >= targets[target] else "NO"
        elif target == "<= 150 ms":
            ok = "yes" if cv <= 150 else "NO"
        else:
            ok = ""
        print(f"{label:<44}{cv:>12.4f}{mv:>12.4f}{ratio:>9.1f}x  {target:<10} {ok}")
    print(f"\ncellops {c['log_metric'] / nm * 1e6:.1f} us per log_metric; "
          f"MLflow {m['log_metric'] / nm * 1e3:.2f} ms per log_metric")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
