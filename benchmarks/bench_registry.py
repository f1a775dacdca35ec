"""Model registry speed: cellops against MLflow's registry on SQLite, side by side.

    pip install ".[bench]" && python benchmarks/bench_registry.py
    python benchmarks/bench_registry.py --mlflow-python /path/to/mlflow-venv/bin/python

Each system runs in a fresh subprocess in a fresh temporary folder (a cellops workspace;
an MLflow `sqlite:///mlflow.db` tracking and registry store with local artifacts). The
model is a LogisticRegression (scaler + classifier pipeline) fitted once on the
breast-cancer data before any timing.

Workloads (targets from issue #11):
  save+register+alias  per version: the model saved into a run with its signature from a
                       5-row sample, registered as the next version, an alias pointed at it
                       (median over versions 2..N; the first, which pays the imports, apart).
                       MLflow: log_model(input_example) + register_model + set alias.
                       cellops: register_model(estimator, X_sample) + set_alias.   >= 40x
  load by alias        load_model("models:/NAME@ALIAS"), warm (median of repeated calls
                       after the first) and cold (the first call in the process).  <= 10 ms warm
  search               search_model_versions over 1,000 versions of one name: a tag filter
                       (100 rows) and the whole name (1,000 rows).                 (reported)
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

N_VERSIONS = 10  # save + register + alias (MLflow takes seconds each)
N_LOADS = 50
N_SEARCH_VERSIONS = 1_000


def _data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return X, y, model


def _per_version(save_register: list[float], alias: list[float]) -> dict[str, float]:
    """The first version (which pays the imports: skops, MLflow's flavour) apart; the
    median of the others."""
    total = [a + b for a, b in zip(save_register, alias)]
    return {"first_version_s": total[0], "save_register_s": statistics.median(save_register[1:]),
            "alias_s": statistics.median(alias[1:]), "per_version_s": statistics.median(total[1:])}


def _median_ms(fn, n: int) -> tuple[float, float]:
    """(cold ms: the first call, warm ms: median of the next n)."""
    t = time.perf_counter()
    fn()
    cold = (time.perf_counter() - t) * 1000
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return cold, statistics.median(times)


# -- workers (run in a subprocess) ---------------------------------------------
def _cellops_worker(scale: float) -> dict[str, float]:
    t0 = time.perf_counter()
    import cellops
    import_s = time.perf_counter() - t0

    cellops.init_workspace(os.getcwd())
    X, _, model = _data()
    sample = X.head(5)
    out: dict[str, float] = {"import_s": import_s}
    n = max(3, int(N_VERSIONS * scale))
    save_register, alias = [], []
    for i in range(n):
        t = time.perf_counter()
        with cellops.start_run(name=f"train-{i}"):
            v = cellops.register_model(model, "bench", X_sample=sample)
        save_register.append(time.perf_counter() - t)
        t = time.perf_counter()
        cellops.set_alias("bench", "champion", v.version)
        alias.append(time.perf_counter() - t)
    out.update(_per_version(save_register, alias))

    expected = model.predict_proba(X.head())
    loaded = cellops.load_model("models:/bench@champion")
    assert abs(loaded.predict_proba(X.head()) - expected).max() < 1e-12
    out["load_cold_ms"], out["load_warm_ms"] = _median_ms(
        lambda: cellops.load_model("models:/bench@champion"), N_LOADS)

    m = max(10, int(N_SEARCH_VERSIONS * scale))
    with cellops.start_run(name="source") as run:
        cellops.register_model(model, "seed")
    t = time.perf_counter()
    for k in range(m):
        cellops.register_model(run, "many", tags={"fold": str(k % 10)})
    out["create_many_s"] = time.perf_counter() - t
    out["search_tag_ms"], out["search_tag_rows"] = _search(
        lambda: cellops.search_model_versions("name = 'many' and tags.fold = '3'", max_results=None))
    out["search_all_ms"], out["search_all_rows"] = _search(
        lambda: cellops.search_model_versions("name = 'many'", max_results=None))
    return out


def _mlflow_worker(scale: float) -> dict[str, float]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    import mlflow
    import mlflow.sklearn
    import_s = time.perf_counter() - t0

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{os.getcwd()}/mlflow.db")
    mlflow.set_experiment("bench")
    client = mlflow.MlflowClient()
    X, _, model = _data()
    sample = X.head(5)
    out: dict[str, float] = {"import_s": import_s}
    n = max(3, int(N_VERSIONS * scale))
    log, register, alias = [], [], []
    for i in range(n):
        t = time.perf_counter()
        with mlflow.start_run(run_name=f"train-{i}"):
            info = mlflow.sklearn.log_model(model, name="model", input_example=sample)
        log.append(time.perf_counter() - t)
        t = time.perf_counter()
        mv = mlflow.register_model(info.model_uri, "bench")
        register.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.set_registered_model_alias("bench", "champion", mv.version)
        alias.append(time.perf_counter() - t)
    out["log_model_s"] = statistics.median(log[1:])
    out["register_s"] = statistics.median(register[1:])
    out.update(_per_version([a + b for a, b in zip(log, register)], alias))

    expected = model.predict_proba(X.head())
    loaded = mlflow.sklearn.load_model("models:/bench@champion")
    assert abs(loaded.predict_proba(X.head()) - expected).max() < 1e-12
    out["load_cold_ms"], out["load_warm_ms"] = _median_ms(
        lambda: mlflow.sklearn.load_model("models:/bench@champion"), N_LOADS)

    m = max(10, int(N_SEARCH_VERSIONS * scale))
    with mlflow.start_run(run_name="source") as run:
        info = mlflow.sklearn.log_model(model, name="model")
    client.create_registered_model("many")
    t = time.perf_counter()
    for k in range(m):
        client.create_model_version("many", info.model_uri, run_id=run.info.run_id,
                                    tags={"fold": str(k % 10)})
    out["create_many_s"] = time.perf_counter() - t
    out["search_tag_ms"], out["search_tag_rows"] = _search(
        lambda: client.search_model_versions("name = 'many' and tags.fold = '3'", max_results=100_000))
    out["search_all_ms"], out["search_all_rows"] = _search(
        lambda: client.search_model_versions("name = 'many'", max_results=100_000))
    return out


def _search(fn) -> tuple[float, float]:
    fn()  # warm-up
    times, rows = [], 0
    for _ in range(5):
        t = time.perf_counter()
        found = fn()
        times.append((time.perf_counter() - t) * 1000)
        rows = len(found)
    return statistics.median(times), float(rows)


# -- driver ----------------------------------------------------------------------
def _spawn(python: str, system: str, scale: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-registry-{system}-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("CELLOPS_HOME", "MLFLOW_TRACKING_URI")}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH")] if p)
        res = subprocess.run(
            [python, str(Path(__file__).resolve()), "--worker", system, str(scale)],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=7200)
    if res.returncode != 0:
        raise RuntimeError(f"{system} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_mlflow_python(ap, "Python interpreter that has mlflow installed (default: this one)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="Scale the workload sizes (0.1 for a quick look); ratios stay comparable")
    ap.add_argument("--json", metavar="FILE", help="Also write the figures to FILE as JSON")
    ap.add_argument("--worker", nargs=2, metavar=("SYSTEM", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, scale = args.worker
        fn = _cellops_worker if system == "cellops" else _mlflow_worker
        print(json.dumps(fn(float(scale))))
        return 0
    if mlflow_missing(args.mlflow_python):
        return 2

    figures: dict[str, dict[str, float]] = {}
    for system, python in (("cellops", sys.executable), ("mlflow", args.mlflow_python)):
        print(f"measuring {system} ...", file=sys.stderr, flush=True)
        figures[system] = _spawn(python, system, args.scale)
    c, m = figures["cellops"], figures["mlflow"]
    for key in ("search_tag_rows", "search_all_rows"):
        if c[key] != m[key]:
            print(f"warning: {key}: cellops {c[key]:.0f}, MLflow {m[key]:.0f}", file=sys.stderr)
    nv = max(10, int(N_SEARCH_VERSIONS * args.scale))
    rows = [
        ("save + register (s per version)", c["save_register_s"], m["save_register_s"], ""),
        ("set alias (s)", c["alias_s"], m["alias_s"], ""),
        ("save + register + alias (s per version)", c["per_version_s"], m["per_version_s"], ">= 40x"),
        ("  the first version, imports included (s)", c["first_version_s"], m["first_version_s"], ""),
        ("load_model by alias, warm (ms)", c["load_warm_ms"], m["load_warm_ms"], "<= 10 ms"),
        ("load_model by alias, cold (ms)", c["load_cold_ms"], m["load_cold_ms"], ""),
        (f"create {nv:,} versions of one name (s)", c["create_many_s"], m["create_many_s"], ""),
        (f"search {nv:,} versions, tag filter (ms)", c["search_tag_ms"], m["search_tag_ms"], ""),
        (f"search {nv:,} versions, whole name (ms)", c["search_all_ms"], m["search_all_ms"], ""),
        ("import (s)", c["import_s"], m["import_s"], ""),
    ]
    print(f"\n{'workload':<44}{'cellops':>12}{'mlflow':>12}{'ratio':>10}  {'target':<9} ok")
    print("-" * 93)
    for label, cv, mv, target in rows:
        ratio = mv / cv if cv > 0 else float("inf")
        ok = ""
        if target == ">= 40x":
            ok = "yes" if ratio >= 40 else "NO"
        elif target == "<= 10 ms":
            ok = "yes" if cv <= 10 else "NO"
        print(f"{label:<44}{cv:>12.4f}{mv:>12.4f}{ratio:>9.1f}x  {target:<9} {ok}")
    print(f"\nMLflow log_model alone: {m['log_model_s']:.2f} s per version "
          f"(register_model {m['register_s'] * 1000:.0f} ms); rows: tag filter "
          f"{c['search_tag_rows']:.0f}/{m['search_tag_rows']:.0f}, whole name "
          f"{c['search_all_rows']:.0f}/{m['search_all_rows']:.0f} (cellops/MLflow)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
