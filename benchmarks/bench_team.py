"""A team's workspace on PostgreSQL: cellops against MLflow on the same PostgreSQL server,
side by side in one run (issue #26).

    pip install ".[bench,postgresql]" && python benchmarks/bench_team.py

MLflow may live in its own virtual environment (``--mlflow-python``); it needs
``psycopg[binary]`` (SQLAlchemy 2.1's default PostgreSQL driver) there. MLflow is measured
two ways against the same server:

- **its tracking server**, ``mlflow server --backend-store-uri postgresql://...`` (the
  issue's anchor, and how MLflow serves a team: clients on other hosts talk HTTP to it, and
  only it holds the database's credentials), started by this script with MLflow's default
  options, its clients given its ``http://`` tracking URI;
- **its client straight on the database** (a ``postgresql://`` tracking URI: MLflow's
  SQLAlchemy store in the client process, no server in between), the shape closest to
  cellops's own and the stricter reference.

The targets are judged against the first; both ratios are printed. By default a throwaway
PostgreSQL cluster is started under a temporary folder with PostgreSQL's durable defaults
(fsync and synchronous commit on); ``--pg-admin-url postgresql://postgres@host:port/postgres``
uses a server you run instead. Every workload gets a fresh database (a tracking server of its
own) and runs in a fresh subprocess (run creation: one per system, kept for all its rounds).

Workloads and targets:
  log_metric     10,000 log_metric calls in a loop, durable at the run's end    >= 100x
  create_runs    1,000 runs with 5 params and 5 metrics each                     >= 10x
                 made in 8 rounds by one process per system, taking turns (the server's
                 speed changes over seconds: after each checkpoint, commits carry
                 full-page images and cost more), each round's ratio printed; then,
                 from a short separate pass, PostgreSQL's own count and time of the
                 WAL flushes (durable commits) and full-page images per run
  search 1k      search_runs, metric filter + metric order, over those 1,000     >= 10x
  search 100k    the same shape over 100,000 runs (first 1,000 rows)             >= 10x
  8 writers      8 processes each logging to its own run at once: total metric
                 points per second on PostgreSQL, on SQLite, and MLflow (both ways)
  sidebar        the sidebar's list routes at 100,000 runs on PostgreSQL         p95 <= 50 ms
                 (benchmarks/bench_sidebar_api.py pointed at the PostgreSQL workspace)

The 100,000 runs are seeded through cellops's API (the bench_sidebar_api shape: 5 params,
3 metrics, two experiments, plus 1,000 pipeline runs); MLflow's copy of the same runs is
written by SQL into MLflow's own tables (seeding it through its API would take hours),
after MLflow created its schema; both ways of MLflow search that one database. Both
databases then get ``VACUUM ANALYZE`` (the state autovacuum keeps a server in) before
anything is measured on them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from anchor import add_mlflow_python, mlflow_missing, time_search

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCALE = float(os.environ.get("BENCH_TEAM_SCALE", "1"))  # --scale, passed to the workers
N_METRICS = int(10_000 * SCALE)
N_RUNS = int(1_000 * SCALE)
ROUNDS = 8  # run creation: rounds per system, alternating
WAL_RUNS = max(50, int(200 * SCALE))  # run creation's pass that counts WAL flushes
N_BIG = 100_000
WRITERS = 8
SEARCH_FILTER = "metrics.m0 > 0.5"
SEARCH_ORDER = ["metrics.m1 DESC"]
BIG_FILTER = "metrics.accuracy > 0.9 and params.model = 'rf'"
BIG_ORDER = ["metrics.f1 DESC"]


# -- workers (each in its own subprocess) ------------------------------------------------------

WARM_UP = 5  # runs each creation worker makes before its timed rounds (imports, plans)


def rounds(create) -> float:
    """Run creation driven by the parent, a round at a time: after ``WARM_UP`` untimed
    runs, say ``ready``; then for each line ``N`` on stdin make N more runs and answer
    with the seconds they took, until the line ``done``. Returns the timed total."""
    create(10**6, WARM_UP)
    print("ready", flush=True)
    made, total = 0, 0.0
    for line in sys.stdin:
        if line.strip() == "done":
            break
        n = int(line)
        t = time.perf_counter()
        create(made, n)
        took = time.perf_counter() - t
        made += n
        total += took
        print(json.dumps({"seconds": took}), flush=True)
    return total


def cellops_worker(workload: str, url: str, arg: str) -> dict:
    import cellops

    if url:
        os.environ["CELLOPS_STORE_URL"] = url
    cellops.init_workspace(os.getcwd())
    out: dict = {}
    if workload == "schema":  # the tables and the experiment, before a pass that counts WAL
        cellops.set_experiment("bench")
        return out
    if workload == "log_metric":
        cellops.set_experiment("bench")
        run = cellops.start_run()
        t = time.perf_counter()
        for i in range(N_METRICS):
            cellops.log_metric("loss", 1.0 / (i + 1))
        cellops.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(run.metric_history("loss")) == N_METRICS
    elif workload == "runs":
        cellops.set_experiment("bench")

        def create(first: int, n: int) -> None:
            for r in range(first, first + n):
                with cellops.start_run(name=f"r{r}") as run:
                    run.log_params({f"p{j}": r * j for j in range(5)})
                    run.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000
                                     for j in range(5)})

        if arg:  # the WAL pass: this many runs, then exit
            create(0, int(arg))
            return out
        out["create_seconds"] = rounds(create)
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: cellops.search_runs(experiment="bench", filter=SEARCH_FILTER,
                                        order_by=SEARCH_ORDER))
    elif workload == "search_big":
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: cellops.search_runs(experiment=["churn", "fraud"], filter=BIG_FILTER,
                                        order_by=BIG_ORDER, max_results=1000))
    elif workload == "writer":
        points = int(arg)
        run = cellops.start_run(name=f"writer-{uuid.uuid4().hex[:6]}")
        t = time.perf_counter()
        for i in range(points):
            run.log_metric("loss", 1.0 / (i + 1))
        run.end()
        out["seconds"] = time.perf_counter() - t
        out["start"], out["end"] = t, time.perf_counter()
    return out


def mlflow_worker(workload: str, url: str, arg: str) -> dict:
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    # ``url``: postgresql://... (its client on the database) or http://... (its server)
    mlflow.set_tracking_uri(url)
    out: dict = {}
    if workload == "schema":  # once, before processes that would race to create it
        for name in ("churn", "fraud", "bench"):
            mlflow.set_experiment(name)
        return out
    exp_id = mlflow.set_experiment("bench").experiment_id
    client = mlflow.MlflowClient()
    if workload == "log_metric":
        run = mlflow.start_run()
        t = time.perf_counter()
        for i in range(N_METRICS):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        mlflow.end_run()
        out["seconds"] = time.perf_counter() - t
        assert len(client.get_metric_history(run.info.run_id, "loss")) == N_METRICS
    elif workload == "runs":
        def create(first: int, n: int) -> None:
            for r in range(first, first + n):
                with mlflow.start_run(run_name=f"r{r}"):
                    mlflow.log_params({f"p{j}": r * j for j in range(5)})
                    mlflow.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000
                                        for j in range(5)})

        if arg:
            create(0, int(arg))
            return out
        out["create_seconds"] = rounds(create)
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: mlflow.search_runs(experiment_ids=[exp_id], filter_string=SEARCH_FILTER,
                                       order_by=SEARCH_ORDER, max_results=100_000))
    elif workload == "search_big":
        ids = [client.get_experiment_by_name(n).experiment_id for n in ("churn", "fraud")]
        out["search_seconds"], out["search_rows"] = time_search(
            lambda: mlflow.search_runs(experiment_ids=ids, filter_string=BIG_FILTER,
                                       order_by=BIG_ORDER, max_results=1000))
    elif workload == "writer":
        points = int(arg)
        run = mlflow.start_run(experiment_id=exp_id)
        t = time.perf_counter()
        for i in range(points):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        mlflow.end_run()
        out["seconds"] = time.perf_counter() - t
        out["start"], out["end"] = t, time.perf_counter()
        del run
    return out


# -- the driver --------------------------------------------------------------------------------

class Server:
    """The PostgreSQL server both systems use: a throwaway durable cluster, or the user's."""

    def __init__(self, admin_url: str | None) -> None:
        self.cluster = None
        if admin_url:
            self.admin = admin_url
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from engines_kit import PgCluster, temp_base

            self.cluster = PgCluster(temp_base(), durable=True)
            self.admin = self.cluster.url("postgres", "postgres")
            # Our own throwaway cluster: time its WAL flushes too (pg_stat_wal.wal_sync_time).
            self.cluster.psql("ALTER SYSTEM SET track_wal_io_timing = on")
            self.cluster.psql("SELECT pg_reload_conf()")

    def database(self) -> str:
        import psycopg

        name = "bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.admin.rsplit("/", 1)[0] + "/" + name

    def wal(self) -> tuple[int, float, int]:
        """The server's WAL flushes so far: how many, milliseconds in them (0 unless
        ``track_wal_io_timing`` is on, as it is on the throwaway cluster), and full-page
        images written. Read after a worker exited (its backend reports at exit) and a
        moment passed."""
        import psycopg

        time.sleep(1.5)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            n, ms, fpi = conn.execute(
                "SELECT wal_sync, wal_sync_time, wal_fpi FROM pg_stat_wal").fetchone()
        return int(n), float(ms), int(fpi)

    def checkpoint(self) -> None:
        """``CHECKPOINT``: what the previous workload left dirty is written out now, so that
        the next one does not pay for it in slower flushes (MLflow's 10,000 log_metric
        commits, just before run creation, left plenty)."""
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy("fast")


class MlflowServer:
    """``with MlflowServer(python, url) as uri``: ``mlflow server --backend-store-uri URL`` on
    127.0.0.1 with MLflow's defaults (the issue's anchor) for the block; ``uri`` is what its
    clients are given. It is ready once it answers and its processes (web workers, job
    consumers) have finished starting: they take the machine's cores for seconds after the
    first answer, which would slow whatever is measured next."""

    def __init__(self, python: str, url: str) -> None:
        self.python, self.url = python, url
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        artifacts = tempfile.mkdtemp(prefix="bench-mlflow-artifacts-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_")}
        # MLflow execs uvicorn from PATH: its environment's scripts come first.
        env["PATH"] = f"{Path(self.python).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log = Path(artifacts) / "server.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "mlflow", "server", "--backend-store-uri", self.url,
                 "--default-artifact-root", artifacts, "--host", "127.0.0.1", "--port",
                 str(port)], env=env, cwd=artifacts, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            self._wait_for(port)
            self._settle()
        except BaseException:
            self.__exit__()
            raise
        return f"http://127.0.0.1:{port}"

    def _wait_for(self, port: int) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not start:\n{self.log.read_text()[-3000:]}")

    def _cpu_seconds(self) -> float:
        """CPU time of the server's processes so far (its session: it started one)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.proc.pid:  # session id
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def _settle(self) -> None:
        """Wait (up to a minute) until the server's processes use under 5% of a core."""
        if not Path("/proc/self/stat").exists():
            time.sleep(10)
            return
        deadline = time.monotonic() + 60
        before = self._cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self._cpu_seconds()
            if now - before < 0.05:
                return
            before = now

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            try:  # its web workers and job consumers, should any outlive it
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def spawn(python: str, system: str, workload: str, url: str, arg: str = "",
          cwd: str | None = None, *, driven: bool = False) -> subprocess.Popen:
    """A worker subprocess. ``driven``: it takes its rounds from stdin (:func:`rounds`),
    its stderr going to a file so that it can never block on a full pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH")] if p)
    env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # "View run at ..." per run
    cwd = cwd or tempfile.mkdtemp(prefix=f"bench-{system}-")
    argv = [python, str(Path(__file__).resolve()), "--worker", system, workload, url, arg]
    errors = Path(cwd) / "stderr.txt" if driven else None
    if errors is None:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    else:
        with open(errors, "w") as err:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.PIPE, text=True)
    proc.errors = errors  # type: ignore[attr-defined]
    return proc


def _errors(proc: subprocess.Popen, err: str | None) -> str:
    """The end of a worker's stderr (from its pipe, or its file when driven)."""
    if err is None and getattr(proc, "errors", None) is not None:
        err = proc.errors.read_text()
    return (err or "")[-3000:]


def created_in_rounds(workers: dict[str, subprocess.Popen]) -> dict[str, list[float]]:
    """Seconds per run of each round of each driven creation worker. The systems take
    turns within a round, in an order that turns around from round to round, so that all
    meet the server's slower and faster moments alike."""
    def line(system: str) -> str:
        text = workers[system].stdout.readline()
        if not text:
            workers[system].wait()
            raise RuntimeError(f"{system} runs worker stopped:\n"
                               + _errors(workers[system], None))
        return text.strip()

    for system in workers:
        if line(system) != "ready":
            raise RuntimeError(f"{system} runs worker did not start")
    per = N_RUNS // ROUNDS
    out: dict[str, list[float]] = {system: [] for system in workers}
    order = list(workers)
    for r in range(ROUNDS):
        n = per if r < ROUNDS - 1 else N_RUNS - per * (ROUNDS - 1)
        for system in (order if r % 2 == 0 else order[::-1]):
            workers[system].stdin.write(f"{n}\n")
            workers[system].stdin.flush()
            out[system].append(json.loads(line(system))["seconds"] / n)
    for system in workers:
        workers[system].stdin.write("done\n")
        workers[system].stdin.flush()
    return out


def result(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate(timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{_errors(proc, err)}")
    return json.loads(out.strip().splitlines()[-1])


def run_one(python: str, system: str, workload: str, url: str, arg: str = "") -> dict:
    return result(spawn(python, system, workload, url, arg), f"{system} {workload}")


def writers(python: str, system: str, url: str, points: int) -> float:
    """Total points per second of WRITERS processes logging at once (each its own run)."""
    cwd = tempfile.mkdtemp(prefix=f"bench-{system}-writers-")
    if system == "cellops" and not url:  # SQLite: one shared workspace file
        subprocess.run([python, "-c", "import cellops; cellops.init_workspace('.')"], cwd=cwd,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True)
    if system == "mlflow":  # its schema and experiment, before eight processes race for them
        run_one(python, "mlflow", "schema", url)
    procs = [spawn(python, system, "writer", url, str(points), cwd=cwd) for _ in range(WRITERS)]
    results = [result(p, f"{system} writer") for p in procs]
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return WRITERS * points / wall


def seed_mlflow_big(url: str, n: int) -> None:
    """``n`` runs in MLflow's tables, in the shape bench_sidebar_api seeds for cellops."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        exps = dict(conn.execute("SELECT name, experiment_id FROM experiments").fetchall())
        churn, fraud = exps["churn"], exps["fraud"]
        now = int(time.time() * 1000)
        conn.execute(f"""
            INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,
                              user_id, status, start_time, end_time, source_version,
                              lifecycle_stage, artifact_uri, experiment_id)
            SELECT md5(i::text), 'run-' || i, 'LOCAL', '', '', 'bench', 'FINISHED',
                   {now} - ({n} - i) * 1000, {now} - ({n} - i) * 1000 + 500, '', 'active',
                   'file:///tmp/a', CASE WHEN i % 2 = 1 THEN {churn} ELSE {fraud} END
            FROM generate_series(0, {n - 1}) i""")
        for key, expr in (("model", "(ARRAY['rf','gb','lr'])[i % 3 + 1]"),
                          ("depth", "(i % 10)::text"), ("lr", "(0.01 * (i % 7))::text"),
                          ("seed", "(i % 5)::text"), ("batch", "'32'")):
            conn.execute(f"INSERT INTO params (key, value, run_uuid) SELECT '{key}', {expr},"
                         f" md5(i::text) FROM generate_series(0, {n - 1}) i")
        for key, expr in (("accuracy", "(i::bigint * 7919 % 1000) / 1000.0"),
                          ("loss", "1.0 / (1 + i % 97)"),
                          ("f1", "(i::bigint * 104729 % 1000) / 1000.0")):
            for table, cols in (("metrics", "key, value, timestamp, run_uuid, step, is_nan"),
                                ("latest_metrics", "key, value, timestamp, run_uuid, step, is_nan")):
                conn.execute(f"INSERT INTO {table} ({cols}) SELECT '{key}', {expr}, {now},"
                             f" md5(i::text), 0, false FROM generate_series(0, {n - 1}) i")
        conn.execute("ANALYZE")


def sidebar(url: str, n: int, folder: str, *, seed_only: bool = False) -> str:
    """bench_sidebar_api.py against a PostgreSQL workspace: seeds it (through cellops's
    API) and, unless ``seed_only``, prints its table."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_")},
           "CELLOPS_STORE_URL": url, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, str(HERE / "bench_sidebar_api.py"), "--runs", str(n),
            "--workspace", folder, "--requests", "40"] + (["--seed-only"] if seed_only else [])
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=7200)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return res.stdout


def settle(*urls: str) -> None:
    """``VACUUM ANALYZE`` each database: both systems' large databases are measured as a
    team's server keeps them (statistics and visibility maps current, as autovacuum leaves
    them), not in the minutes after a bulk load."""
    import psycopg

    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_mlflow_python(ap, "Python that has mlflow and psycopg (default: this one)")
    ap.add_argument("--pg-admin-url", help="a PostgreSQL server to use (a superuser URL); "
                    "default: a throwaway durable cluster")
    ap.add_argument("--big", type=int, default=N_BIG, help="runs for the large search and the "
                    "sidebar routes (default 100,000)")
    ap.add_argument("--skip-big", action="store_true", help="leave out the 100,000-run part")
    ap.add_argument("--scale", type=float, default=1.0, help="scale the 10,000 points and "
                    "1,000 runs (e.g. 0.1 for a quick look)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, workload, url, arg = args.worker
        fn = cellops_worker if system == "cellops" else mlflow_worker
        print(json.dumps(fn(workload, url, arg)))
        return 0
    if mlflow_missing(args.mlflow_python):
        return 2
    os.environ["BENCH_TEAM_SCALE"] = str(args.scale)
    # Stopped with SIGTERM, still stop the servers and remove the folders (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global N_METRICS, N_RUNS, WAL_RUNS
    N_METRICS, N_RUNS = int(10_000 * args.scale), int(1_000 * args.scale)
    WAL_RUNS = max(50, int(200 * args.scale))
    # Every folder of this run (the workers', the 100,000-run workspace, the cluster's data)
    # goes under one, removed at the end: they take gigabytes. Readable by the postgres
    # user, who owns the cluster when this runs as root.
    work = tempfile.mkdtemp(prefix="bench-team-")
    os.chmod(work, 0o755)
    tempfile.tempdir = work
    try:
        return measure(args)
    finally:
        tempfile.tempdir = None
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace) -> int:
    server = Server(args.pg_admin_url)
    py, mpy = sys.executable, args.mlflow_python
    f: dict = {}

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(f, indent=2, default=str))

    print(f"PostgreSQL {'(throwaway durable cluster)' if server.cluster else args.pg_admin_url}. "
          "MLflow server: `mlflow server --backend-store-uri postgresql://...` (the target's "
          "anchor);\nMLflow on DB: its client on the database (a postgresql:// tracking URI, "
          "its SQLAlchemy store).\n", flush=True)
    print(f"{'workload':<44}{'unit':>5}{'cellops':>10}{'MLflow server':>15}{'ratio':>8}"
          f"  {'target':<8}{'ok':<4}{'MLflow on DB':>13}{'ratio':>8}", flush=True)
    print("-" * 115, flush=True)

    def row(label: str, cv: float, sv: float, dv: float, unit: str, target: float) -> None:
        ratio, direct = (sv / cv, dv / cv) if cv else (float("inf"), float("inf"))
        print(f"{label:<44}{unit:>5}{cv:>10.3f}{sv:>15.3f}{ratio:>7.1f}x  >= {target:<5g}"
              f"{'yes' if ratio >= target else 'NO':<4}{dv:>13.3f}{direct:>7.1f}x", flush=True)

    try:
        lm = f["log_metric"] = {
            "cellops": run_one(py, "cellops", "log_metric", server.database())["seconds"]}
        with MlflowServer(mpy, server.database()) as uri:
            lm["mlflow_server"] = run_one(mpy, "mlflow", "log_metric", uri)["seconds"]
        lm["mlflow_db"] = run_one(mpy, "mlflow", "log_metric", server.database())["seconds"]
        save()
        row(f"log_metric x{N_METRICS:,}, per call",
            *(lm[k] / N_METRICS * 1e6 for k in ("cellops", "mlflow_server", "mlflow_db")),
            "us", 100)
        # WAL flushes per run: a short pass per system, each in a process of its own whose
        # backend reports its counts when it exits, on a database whose tables another
        # process made first (creating them writes WAL of its own). MLflow's server writes
        # what its client on the database writes: counted once, that way.
        wal = {}
        for system, python in (("cellops", py), ("mlflow", mpy)):
            url = server.database()
            run_one(python, system, "schema", url)
            server.checkpoint()
            before = server.wal()
            run_one(python, system, "runs", url, str(WAL_RUNS))
            after = server.wal()
            wal[system] = tuple((b - a) / WAL_RUNS for a, b in zip(before, after))
        f["runs_wal_per_run"] = wal
        with MlflowServer(mpy, server.database()) as uri:
            workers = {"cellops": spawn(py, "cellops", "runs", server.database(), driven=True),
                       "mlflow_server": spawn(mpy, "mlflow", "runs", uri, driven=True),
                       "mlflow_db": spawn(mpy, "mlflow", "runs", server.database(), driven=True)}
            server.checkpoint()
            per_round = created_in_rounds(workers)
            runs = f["runs"] = {system: result(workers[system], f"{system} runs")
                                for system in workers}
        f["runs_rounds_ms"] = {s: [x * 1e3 for x in v] for s, v in per_round.items()}
        save()
        row("create run (5 params, 5 metrics), per run",
            *(runs[k]["create_seconds"] / N_RUNS * 1e3
              for k in ("cellops", "mlflow_server", "mlflow_db")), "ms", 10)

        def spread(system: str, scale: float = 1e3) -> str:
            v = per_round[system]
            return f"{min(v) * scale:.2f}-{max(v) * scale:.2f} ms"

        for anchor, name in (("mlflow_server", "MLflow server"), ("mlflow_db", "MLflow on DB")):
            ratios = [m / c for c, m in zip(per_round["cellops"], per_round[anchor])]
            print(f"  {ROUNDS} rounds of {N_RUNS // ROUNDS} runs, ratio to {name} per round: "
                  + ", ".join(f"{x:.1f}x" for x in ratios)
                  + f" (cellops {spread('cellops')}, {name} {spread(anchor)})", flush=True)
        timed = wal["cellops"][1] > 0
        print(f"  per run, from {WAL_RUNS} more of each: PostgreSQL's WAL flushes (durable "
              f"commits) cellops {wal['cellops'][0]:.1f}"
              + (f" taking {wal['cellops'][1]:.2f} ms" if timed else "")
              + f", MLflow {wal['mlflow'][0]:.1f}"
              + (f" taking {wal['mlflow'][1]:.2f} ms" if timed else "")
              + f"; full-page images cellops {wal['cellops'][2]:.1f}, MLflow {wal['mlflow'][2]:.1f}",
              flush=True)
        row(f"search_runs over {N_RUNS:,} ({runs['cellops']['search_rows']} rows)",
            *(runs[k]["search_seconds"] * 1e3 for k in ("cellops", "mlflow_server", "mlflow_db")),
            "ms", 10)
        if not args.skip_big:
            big, mbig = server.database(), server.database()
            run_one(mpy, "mlflow", "schema", mbig)
            seed_mlflow_big(mbig, args.big)
            folder = tempfile.mkdtemp(prefix="bench-sidebar-pg-")
            sidebar(big, args.big, folder, seed_only=True)  # cellops's copy, through the API
            settle(big, mbig)
            sidebar_table = sidebar(big, args.big, folder)
            sb = f["search_big"] = {"cellops": run_one(py, "cellops", "search_big", big)}
            with MlflowServer(mpy, mbig) as uri:
                sb["mlflow_server"] = run_one(mpy, "mlflow", "search_big", uri)
            sb["mlflow_db"] = run_one(mpy, "mlflow", "search_big", mbig)
            save()
            row(f"search_runs over {args.big:,} (first {sb['cellops']['search_rows']} rows)",
                *(sb[k]["search_seconds"] * 1e3 for k in ("cellops", "mlflow_server", "mlflow_db")),
                "ms", 10)
        points = int(20_000 * args.scale)
        few = max(50, points // 40)  # MLflow's writers: a point is a round trip each
        w = f["writers"] = {
            "cellops_pg": writers(py, "cellops", server.database(), points),
            "cellops_sqlite": writers(py, "cellops", "", points)}
        with MlflowServer(mpy, server.database()) as uri:
            w["mlflow_server"] = writers(mpy, "mlflow", uri, few)
        w["mlflow_db"] = writers(mpy, "mlflow", server.database(), few)
        save()
        print(f"\n{WRITERS} concurrent writers, total metric points per second:")
        print(f"  cellops on PostgreSQL  {w['cellops_pg']:>12,.0f}")
        print(f"  cellops on SQLite      {w['cellops_sqlite']:>12,.0f}")
        for key, name in (("mlflow_server", "MLflow server"), ("mlflow_db", "MLflow on DB")):
            print(f"  {name:<22} {w[key]:>12,.0f}   (cellops on PostgreSQL / {name}: "
                  f"{w['cellops_pg'] / w[key]:,.0f}x)", flush=True)
        if not args.skip_big:
            f["sidebar"] = sidebar_table
            save()
            print(f"\nSidebar list routes on PostgreSQL (bench_sidebar_api.py):\n{sidebar_table}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
