"""Many processes on one workspace: nothing lost, nothing corrupted, no lock errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import cellops

WORKER = r"""
import sys, time
import cellops
start_at, wid = float(sys.argv[1]), sys.argv[2]
while time.time() < start_at:
    time.sleep(0.0005)
for r in range(5):
    with cellops.start_run(name=f"w{wid}-r{r}", experiment=f"exp-{int(wid) % 2}",
                           params={"worker": wid, "r": r}) as run:
        for i in range(200):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_metrics({"a": 1, "b": 2})
        run.set_tag("done", "yes")
        run.log_artifact(f"{wid}-{r}".encode(), "id.txt")
print("ok")
"""

N_PROCESSES = 6


@pytest.mark.parametrize("small_batches", [False, True], ids=["bare-folder", "tiny-flushes"])
def test_processes_opening_a_brand_new_workspace_at_once_lose_nothing(tmp_path, small_batches):
    home = tmp_path / "new" / "ws"
    if small_batches:  # many concurrent metric flushes instead of one per run
        home.mkdir(parents=True)
        (home / "config.json").write_text(json.dumps({"metric_flush_rows": 20}))
    start_at = time.time() + 3.0  # every process is imported and waiting by then
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(start_at), str(w)], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(N_PROCESSES)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0 and out.strip() == "ok", err
        assert "locked" not in err.lower()

    con = sqlite3.connect(home / "cellops.db")
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    assert q("PRAGMA integrity_check") == [("ok",)]
    assert q("SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'") == [(N_PROCESSES * 5,)]
    assert q("SELECT COUNT(*) FROM experiments") == [(2,)]
    assert q("SELECT COUNT(*) FROM metrics WHERE key = 'loss'") == [(N_PROCESSES * 5 * 200,)]
    assert q("SELECT COUNT(*) FROM latest_metrics") == [(N_PROCESSES * 5 * 3,)]
    assert q("SELECT COUNT(DISTINCT step) FROM latest_metrics WHERE key = 'loss'") == [(1,)]
    assert q("SELECT MIN(step), MAX(step) FROM latest_metrics WHERE key = 'loss'") == [(199, 199)]
    assert q("SELECT COUNT(*) FROM params") == [(N_PROCESSES * 5 * 2,)]
    assert q("SELECT COUNT(*) FROM tags") == [(N_PROCESSES * 5,)]
    assert q("SELECT COUNT(DISTINCT sha256) FROM artifacts") == [(N_PROCESSES * 5,)]
    assert q("SELECT COUNT(*) FROM environments") == [(1,)]


KILLED_WORKER = r"""
import cellops
run = cellops.start_run(name="victim")
print(run.id, flush=True)
i = 0
while True:
    run.log_metric("loss", 1.0 / (i + 1))
    run.log_metric("acc", i % 7)
    i += 1
"""


def test_a_process_killed_mid_logging_leaves_a_sound_store_and_a_killed_run(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"metric_flush_rows": 50}))
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    probe = sqlite3.connect(home / "cellops.db", timeout=30)
    deadline = time.time() + 60
    while probe.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] < 2000:
        assert time.time() < deadline, "the worker never logged enough metrics"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    probe.close()

    con = sqlite3.connect(home / "cellops.db")
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Every flushed batch is whole: history and latest values agree.
    for key in ("loss", "acc"):
        max_step = con.execute("SELECT MAX(step) FROM metrics WHERE key = ?", (key,)).fetchone()[0]
        latest = con.execute("SELECT step FROM latest_metrics WHERE key = ?", (key,)).fetchone()[0]
        assert latest == max_step
    count = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert count % 50 == 0  # only whole batches of the buffer reached the file
    os.environ["CELLOPS_HOME"] = str(home)
    try:
        run = cellops.get_run(run_id)
        assert run.status == "KILLED"
        assert "ended without ending it" in run.error
        assert len(run.metric_history("loss")) == count // 2
    finally:
        del os.environ["CELLOPS_HOME"]


def test_a_writer_holding_the_lock_makes_others_wait_not_fail(ws):
    blocker = sqlite3.connect(ws.db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    released = []

    def release():
        time.sleep(1.0)
        blocker.execute("COMMIT")
        released.append(time.time())

    import threading

    t = threading.Thread(target=release)
    t.start()
    with cellops.start_run(params={"x": 1}) as run:
        run.log_metric("m", 1)
    t.join()
    assert released and cellops.get_run(run.id).params == {"x": "1"}


def test_a_lock_held_past_the_budget_gives_an_actionable_error_and_writes_nothing(ws):
    with cellops.start_run() as run:
        pass
    ws.store.busy_timeout_s = 0.1
    ws.store.retry_budget_s = 0.5
    ws.store.close()
    blocker = sqlite3.connect(ws.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(cellops.StoreBusyError, match="nothing was written"):
            ws.store.tags.set(run.id, {"k": "v"})
    finally:
        blocker.execute("ROLLBACK")
    assert cellops.get_run(run.id).tags == {}


def run_together(code: str, *args: str, env: dict[str, str]) -> list[str]:
    """Run ``code`` in N_PROCESSES processes that start working at the same moment (each
    gets ``start_at`` as its last argument); each must succeed; return their outputs."""
    start_at = time.time() + 3.0  # every process is imported and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", code, *args, str(start_at)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(N_PROCESSES)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


OPENER = r"""
import json, sys, time
import cellops
start_at = float(sys.argv[-1])
while time.time() < start_at:
    time.sleep(0.0005)
ws = cellops.workspace()
ws.store.conn  # opening a brand-new file creates and migrates it
print(json.dumps(ws.store.retries))
"""


def test_migrations_run_once_under_a_lock_while_processes_open_a_new_workspace(tmp_path):
    """Each opener takes the write lock (BEGIN IMMEDIATE) before reading the schema version:
    the others wait in SQLite's busy handler, then find it migrated. Without that lock they
    would migrate concurrently and hit "already exists" or busy errors, seen as retries."""
    home = tmp_path / "fresh"
    for out in run_together(OPENER, env={**os.environ, "CELLOPS_HOME": str(home)}):
        assert json.loads(out)["migrate"] == 0, out
    con = sqlite3.connect(home / "cellops.db")
    from cellops.store.schema import LATEST_VERSION

    assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone() == (1,)


APPENDER = r"""
import json, sys, time
import cellops
run_id, start_at = sys.argv[1], float(sys.argv[-1])
store = cellops.workspace().store
store.conn
while time.time() < start_at:
    time.sleep(0.0005)
for i in range(50):
    store.cells.add(run_id, {"source": f"x = {i}", "start_time": 0, "status": "ok"})
print(json.dumps(store.retries))
"""


def test_read_then_write_transactions_never_need_a_retry_under_contention(ws, tmp_path):
    """add_cell reads the next sequence number, then inserts. Started with BEGIN IMMEDIATE, the
    transaction holds the write lock before it reads, so concurrent appenders queue in the busy
    handler and get distinct numbers. With a deferred BEGIN, a reader whose snapshot went stale
    fails with SQLITE_BUSY_SNAPSHOT at its first write (no busy handler): a retry."""
    with cellops.start_run() as run:
        pass
    for out in run_together(APPENDER, run.id, env={**os.environ, "CELLOPS_HOME": str(ws.path)}):
        assert json.loads(out)["write"] == 0, out
    seqs = [c["seq"] for c in cellops.cell_history(run.id)]
    assert sorted(seqs) == list(range(N_PROCESSES * 50))
