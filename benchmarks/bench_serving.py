"""Scoring server speed: `cellops serve` against `mlflow models serve --env-manager local`.

    pip install ".[bench]" && python benchmarks/bench_serving.py
    python benchmarks/bench_serving.py --mlflow-python /path/to/mlflow-venv/bin/python

Both servers serve the same model — StandardScaler + LogisticRegression fitted on the
breast-cancer data (30 float columns), fitted the same way in each environment — from a
fresh temporary folder, one worker process each, on 127.0.0.1, started the way a user
starts them. cellops keeps its prediction log on (every request is logged) and its access
log off; MLflow has neither. Requests are MLflow's `dataframe_split` JSON over keep-alive
HTTP/1.1 connections (http.client), the same bytes to both servers.

Workloads (targets from issue #12):
  latency    one client, requests of 1, 100 and 1,000 rows; p50 and p99 of the round
             trip (after a warm-up).                              p50 (1 row) <= 1.2 ms
  throughput 8 client processes for --seconds each, 1-row requests, as fast as the server
             answers: requests per second.                        >= 3x MLflow
  memory     the server's resident memory (its process tree) after the runs.  (reported)
  batch      (--batch-rows, default 10,000,000) `cellops predict` over a Parquet file of
             that many rows (3 float columns, chunks of 100,000, logged): time, rows/s, and
             peak resident memory against the same run over a tenth of the rows: flat
             memory means the two peaks are about equal.          (reported; --batch-rows 0 skips)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anchor import add_mlflow_python, mlflow_missing

ROWS = (1, 100, 1000)
REQUESTS = {1: 2000, 100: 500, 1000: 100}
CLIENTS = 8

FIT = """
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
"""

SETUP = {
    "cellops": FIT + """
import cellops
cellops.init_workspace('.')
cellops.register_model(model, 'cancer', X_sample=X.head())
cellops.set_alias('cancer', 'champion', 1)
""",
    "mlflow": FIT + """
import mlflow.sklearn
from mlflow.models import infer_signature
mlflow.sklearn.save_model(model, 'model', signature=infer_signature(X.head(), model.predict(X.head())))
""",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(system: str, python: str, folder: Path, extra: tuple[str, ...] = ()
           ) -> tuple[subprocess.Popen, int]:
    subprocess.run([python, "-c", SETUP[system]], cwd=folder, check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    port = _free_port()
    if system == "cellops":
        cmd = [python, "-m", "cellops", "serve", "models:/cancer@champion", "--port", str(port),
               "--no-access-log", *extra]
    else:
        mlflow = str(Path(python).with_name("mlflow"))
        cmd = [mlflow, "models", "serve", "-m", "model", "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    # MLflow execs `uvicorn` from PATH: its environment's scripts come first.
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(cmd, cwd=folder, env={**env, "PYTHONWARNINGS": "ignore"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{system} server exited with {proc.returncode}")
        time.sleep(0.2)
    raise SystemExit(f"{system} server did not start")


def _body(n: int) -> bytes:
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer(as_frame=True).data
    rows = [X.iloc[i % len(X)].tolist() for i in range(n)]
    return json.dumps({"dataframe_split": {"columns": list(X.columns), "data": rows}}).encode()


def _post(conn: http.client.HTTPConnection, body: bytes) -> None:
    conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"status {resp.status}: {data[:300]!r}")


def _latency(port: int) -> dict[str, float]:
    out = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in ROWS:
        body = _body(n)
        for _ in range(50):
            _post(conn, body)
        times = []
        for _ in range(REQUESTS[n]):
            t0 = time.perf_counter()
            _post(conn, body)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[f"p50_{n}"] = statistics.median(times)
        out[f"p99_{n}"] = times[min(len(times) - 1, int(len(times) * 0.99))]
    return out


def _client(port: int, seconds: float, start: float, queue: mp.Queue) -> None:
    body = _body(1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    _post(conn, body)
    while time.time() < start:
        time.sleep(0.001)
    done = 0
    end = start + seconds
    while time.time() < end:
        _post(conn, body)
        done += 1
    queue.put(done)


def _throughput(port: int, seconds: float) -> float:
    queue: mp.Queue = mp.Queue()
    start = time.time() + 2
    procs = [mp.Process(target=_client, args=(port, seconds, start, queue)) for _ in range(CLIENTS)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def _server(system: str, python: str, seconds: float, extra: tuple[str, ...] = ()
            ) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-serve-{system}-") as tmp:
        proc, port = _start(system, python, Path(tmp), extra)
        try:
            print(f"measuring {system} latency ...", file=sys.stderr, flush=True)
            figures = _latency(port)
            print(f"measuring {system} throughput ...", file=sys.stderr, flush=True)
            figures["rps_8"] = _throughput(port, seconds)
            figures["rss_mb"] = _rss_mb(proc.pid)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(60)
    return figures


def _batch(rows: int) -> dict[str, float]:
    """`cellops predict` over `rows` and rows/10: time and peak RSS of each run."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        fit = ("import numpy as np, pandas as pd, cellops\n"
               "from sklearn.linear_model import LogisticRegression\n"
               "rng = np.random.default_rng(0)\n"
               "X = pd.DataFrame(rng.random((1000, 3)), columns=['a', 'b', 'c'])\n"
               "cellops.init_workspace('.')\n"
               "cellops.register_model(LogisticRegression().fit(X, X.a > X.b), 'flat', X_sample=X.head())\n")
        subprocess.run([sys.executable, "-c", fit], cwd=folder, check=True)
        rng = np.random.default_rng(1)
        for label, n in (("small", rows // 10), ("large", rows)):
            path = folder / f"{label}.parquet"
            with pq.ParquetWriter(path, pa.schema([(c, pa.float64()) for c in "abc"])) as w:
                for start in range(0, n, 1_000_000):
                    k = min(1_000_000, n - start)
                    w.write_table(pa.table({c: rng.random(k) for c in "abc"}))
            code = ("import resource, sys, time, cellops\n"
                    "t = time.perf_counter()\n"
                    f"r = cellops.predict_file('models:/flat/1', '{path}', '{folder / (label + '-out.parquet')}')\n"
                    "took = time.perf_counter() - t\n"
                    "print(r.rows, took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
            print(f"batch scoring {n:,} rows ...", file=sys.stderr, flush=True)
            res = subprocess.run([sys.executable, "-c", code], cwd=folder, check=True,
                                 capture_output=True, text=True)
            done, took, peak = res.stdout.split()
            assert int(done) == n
            out[f"{label}_rows"] = n
            out[f"{label}_s"] = float(took)
            out[f"{label}_peak_mb"] = float(peak)
            out[f"{label}_file_mb"] = path.stat().st_size / 2**20
            path.unlink()
        out["db_mb"] = (folder / ".cellops" / "cellops.db").stat().st_size / 2**20
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_mlflow_python(ap, "a Python with mlflow and the same scikit-learn (default: this one)")
    ap.add_argument("--seconds", type=float, default=10.0, help="throughput run length per server")
    ap.add_argument("--batch-rows", type=int, default=10_000_000, help="rows for the batch run (0: skip)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if mlflow_missing(args.mlflow_python):
        return 2
    c = _server("cellops", sys.executable, args.seconds)
    n = _server("cellops", sys.executable, args.seconds, ("--no-log",))
    m = _server("mlflow", args.mlflow_python, args.seconds)
    figures = {"cellops": c, "cellops_no_log": n, "mlflow": m}
    print(f"\n{'workload (1 worker each)':<36}{'cellops':>10}{'no log':>10}{'mlflow':>10}"
          f"{'ratio':>8}  target")
    print("-" * 90)
    for rows in ROWS:
        for q in ("p50", "p99"):
            key = f"{q}_{rows}"
            target = "<= 1.2 ms" if key == "p50_1" else ""
            ok = (" ok" if c[key] <= 1.2 else " MISSED") if key == "p50_1" else ""
            print(f"{f'latency {q}, {rows:,} row(s) (ms)':<36}{c[key]:>10.3f}{n[key]:>10.3f}"
                  f"{m[key]:>10.3f}{m[key] / c[key]:>7.1f}x  {target}{ok}")
    ratio = c["rps_8"] / m["rps_8"]
    print(f"{'throughput, 8 clients (req/s)':<36}{c['rps_8']:>10.0f}{n['rps_8']:>10.0f}"
          f"{m['rps_8']:>10.0f}{ratio:>7.1f}x  >= 3x {'ok' if ratio >= 3 else 'MISSED'}")
    print(f"{'server memory (MB, process tree)':<36}{c['rss_mb']:>10.0f}{n['rss_mb']:>10.0f}"
          f"{m['rss_mb']:>10.0f}{m['rss_mb'] / c['rss_mb']:>7.1f}x")
    print("\ncellops: every request logged; no log: `--no-log`; MLflow logs none. ratio: MLflow "
          "over cellops (with its log), how many times faster or smaller cellops is.")
    if args.batch_rows:
        b = _batch(args.batch_rows)
        figures["batch"] = b
        print("\ncellops predict, Parquet, 3 columns, chunks of 100,000, every chunk logged:")
        for label in ("small", "large"):
            print(f"  {b[f'{label}_rows']:>12,} rows: {b[f'{label}_s']:7.1f} s "
                  f"({b[f'{label}_rows'] / b[f'{label}_s']:,.0f} rows/s), peak RSS "
                  f"{b[f'{label}_peak_mb']:,.0f} MB (input file {b[f'{label}_file_mb']:,.0f} MB)")
        print(f"  memory ratio large/small: {b['large_peak_mb'] / b['small_peak_mb']:.2f} "
              f"for {b['large_rows'] / b['small_rows']:.0f}x the rows (flat = about 1)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
