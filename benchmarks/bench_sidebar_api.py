"""Latency of the sidebar's list routes on a workspace of 100,000 runs (issue #5).

    python benchmarks/bench_sidebar_api.py [--runs 100000] [--requests 60] [--workspace DIR]

Seeds a workspace through the public API (each run: 5 params, 3 metrics, 2 experiments;
plus 1,000 pipeline runs with 3 steps each; a seeded workspace is reused when
--workspace names one), starts a real Jupyter server
with the cellops extension on 127.0.0.1, and times each list route over HTTP with the
token, as the sidebar calls them. Prints p50 / p95 per route beside the target
(p95 <= 50 ms per page).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path


def seed(root: Path, n: int) -> None:
    import cellops

    ws = cellops.init_workspace(root)
    have = cellops.list_runs(limit=1, kinds=["run"], workspace=ws).total
    if have >= n:
        print(f"reusing {have:,} runs in {ws.path}")
        return
    t = time.perf_counter()
    for i in range(have, n):
        run = cellops.start_run(name=f"run-{i}", experiment="churn" if i % 2 else "fraud",
                                activate=False,
                                params={"model": ("rf", "gb", "lr")[i % 3], "depth": i % 10,
                                        "lr": 0.01 * (i % 7), "seed": i % 5, "batch": 32})
        run.log_metrics({"accuracy": (i * 7919 % 1000) / 1000, "loss": 1 / (1 + i % 97),
                         "f1": (i * 104729 % 1000) / 1000})
        run.end()
        if (i + 1) % 10_000 == 0:
            print(f"  seeded {i + 1:,} runs ({time.perf_counter() - t:.0f} s)", flush=True)
    cellops.flush()


def seed_pipelines(root: Path, n: int) -> None:
    """``n`` pipeline runs, each with three step runs and the per-step status the runner
    records, as `cellops pipeline run` leaves them (without running notebooks)."""
    import json

    import cellops

    ws = cellops.workspace(root)
    have = cellops.pipeline_runs(limit=1, workspace=ws).total
    for i in range(have, n):
        pipe = cellops.start_run(name="churn-pipeline", experiment="pipelines", kind="pipeline",
                                 activate=False)
        steps = []
        for j, step in enumerate(("prepare", "train", "evaluate")):
            child = cellops.start_run(name=step, experiment="pipelines", kind="step",
                                      parent=pipe, activate=False)
            child.end()
            steps.append({"name": step, "status": ("ran", "cached")[(i + j) % 2],
                          "run_id": child.id, "duration_s": 1.5 * (j + 1), "reason": None,
                          "error": None})
        pipe.set_tags({"pipeline.steps": json.dumps(steps)})
        pipe.end()
    if n > have:
        print(f"  seeded {n - have:,} pipeline runs with 3 steps each")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--pipelines", type=int, default=1_000,
                    help="pipeline runs to seed besides the runs (each with 3 step runs)")
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--workspace", type=Path, default=None,
                    help="project folder to seed or reuse (default: a temporary one)")
    ap.add_argument("--seed-only", action="store_true",
                    help="seed the workspace (to reuse with --workspace) and stop")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench-sidebar-")
    root = (args.workspace or Path(tmp.name) / "project").absolute()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.pop("CELLOPS_HOME", None)
    os.chdir(root)  # runs started below go to this folder's workspace
    seed(root, args.runs)
    seed_pipelines(root, args.pipelines)
    if args.seed_only:
        return 0

    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.jpserver_extensions={'cellops.server': True}", "--log-level=WARN"],
        cwd=root, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(Path(tmp.name) / "runtime")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/cellops/api/v1/"
    headers = {"Authorization": f"token {token}"}

    def fetch(route: str) -> tuple[float, dict]:
        t = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(base + route, headers=headers)) as r:
            body = json.loads(r.read())
        return (time.perf_counter() - t) * 1000, body

    deadline = time.time() + 60
    while True:
        try:
            fetch("workspace")
            break
        except OSError:
            if time.time() > deadline:
                server.kill()
                raise SystemExit("the Jupyter server did not start")
            time.sleep(0.3)

    q = urllib.parse.urlencode
    everything = fetch("runs?limit=1")[1]["total"]
    last = everything - 50
    routes = {
        "workspace (no SQL: the HTTP and auth floor)": "workspace",
        "runs, first page (newest first)": "runs?" + q({"limit": 50}),
        "runs, one experiment": "runs?" + q({"experiment": "churn", "limit": 50}),
        "runs, filter on a metric and a param": "runs?" + q(
            {"filter": "metrics.accuracy > 0.9 and params.model = 'rf'", "limit": 50}),
        "runs, ordered by a metric": "runs?" + q({"order_by": "metrics.accuracy DESC", "limit": 50}),
        f"runs, last page (offset {last:,})": "runs?" + q({"limit": 50, "offset": last}),
        "runs, sorted by status": "runs?" + q({"order_by": "attributes.status ASC", "limit": 50}),
        "runs, sorted by name": "runs?" + q({"order_by": "attributes.run_name DESC", "limit": 50}),
        "runs, filter matching few runs": "runs?" + q(
            {"filter": "metrics.accuracy > 0.995 and params.model = 'rf'", "limit": 50}),
        "runs, experiment + filter + metric order": "runs?" + q(
            {"experiment": "churn", "filter": "metrics.accuracy > 0.9 and params.model = 'rf'",
             "order_by": "metrics.f1 DESC", "limit": 50}),
        "runs, filter on one param (a third)": "runs?" + q(
            {"filter": "params.model = 'rf'", "limit": 50}),
        "runs, filter on a metric (half)": "runs?" + q(
            {"filter": "metrics.accuracy > 0.5", "limit": 50}),
        "runs, filter on an attribute (status)": "runs?" + q(
            {"filter": "attributes.status = 'FINISHED'", "limit": 50}),
        "runs, param filter + metric order": "runs?" + q(
            {"filter": "params.model = 'rf'", "order_by": "metrics.f1 DESC", "limit": 50}),
        "runs, experiment + param filter + param order": "runs?" + q(
            {"experiment": "churn", "filter": "params.model = 'rf'",
             "order_by": "params.depth DESC", "limit": 50}),
        "runs, filter with OR": "runs?" + q(
            {"filter": "params.model = 'rf' or metrics.f1 > 0.99", "limit": 50}),
        "runs, ordered by a param": "runs?" + q({"order_by": "params.depth DESC", "limit": 50}),
        "runs, one experiment ordered by a param": "runs?" + q(
            {"experiment": "churn", "order_by": "params.model", "limit": 50}),
        "experiments": "experiments",
        "pipelines": "pipelines?limit=20",
    }
    try:
        print(f"\n{everything:,} runs in all ({args.runs:,} plain runs, {args.pipelines:,} pipeline "
              f"runs with their steps); {args.requests} requests per route; target p95 <= 50 ms "
              "per page\n")
        print(f"{'route':<47}{'p50 ms':>9}{'p95 ms':>9}{'rows':>7}{'total':>10}  target")
        print("-" * 93)
        for label, route in routes.items():
            fetch(route)  # warm the page cache and the connection
            times, body = [], {}
            for _ in range(args.requests):
                ms, body = fetch(route)
                times.append(ms)
            times.sort()
            p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
            rows = len(body.get("runs") or body.get("pipelines") or body.get("experiments") or [])
            total = body.get("total", "")
            print(f"{label:<47}{statistics.median(times):>9.1f}{p95:>9.1f}{rows:>7}{total!s:>10}  "
                  f"{'yes' if p95 <= 50 else 'NO'}")
    finally:
        server.terminate()
        server.wait(10)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
