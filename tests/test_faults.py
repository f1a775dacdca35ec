"""Faults across real processes on one real SQLite file: what survives, what is refused, what is said.

Each test names the mechanism it holds in place; without it the test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cellops
from cellops.tracking import active

PY = sys.executable


def spawn(code: str, home: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "CELLOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([PY, "-c", code], env=env, cwd=home.parent, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    return subprocess.run([PY, "-m", "cellops.cli", *args], env=env, cwd=home.parent,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A workspace folder whose buffer only flushes when asked (or at 10,000 points)."""
    path = tmp_path / "ws"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"metric_flush_seconds": 3600,
                                                   "metric_flush_rows": 10_000}))
    monkeypatch.setenv("CELLOPS_HOME", str(path))
    return path


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "cellops.db", timeout=30)


# -- a flush that fails for one run -------------------------------------------------------
TWO_RUNS = r"""
import sys, warnings, cellops
warnings.simplefilter("always")
a = cellops.start_run(name="a", activate=False)
b = cellops.start_run(name="b", activate=False)
print(a.id, b.id, flush=True)
for i in range(100):
    a.log_metric("m", i)
    b.log_metric("m", i)
sys.stdin.readline()          # the test deletes run b from another process now
cellops.flush()
for i in range(100, 150):
    a.log_metric("m", i)
try:
    b.log_metric("m", 1)
except cellops.RunStateError as exc:
    print("REFUSED:", exc, flush=True)
a.end()
try:
    b.end()
except cellops.RunNotFoundError as exc:
    print("END:", exc, flush=True)
"""


def test_a_flush_that_fails_for_one_run_stores_every_other_runs_points(home):
    proc = spawn(TWO_RUNS, home)
    a_id, b_id = proc.stdout.readline().split()
    res = cli("runs", "delete", b_id, "--yes", "--force", home=home)
    assert res.returncode == 0, res.stderr
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 0, err

    con = db(home)
    assert con.execute("SELECT count(*), max(step) FROM metrics WHERE run_id = ?",
                       (a_id,)).fetchone() == (150, 149)
    assert con.execute("SELECT status FROM runs WHERE id = ?", (a_id,)).fetchone() == ("FINISHED",)
    assert con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (b_id,)).fetchone() == (0,)
    # One warning naming the run, the count and the cause; later calls refused; said at exit.
    assert err.count(f"could not store 100 metric point(s) of run {b_id[:8]}") == 1
    assert "was deleted" in err or "no longer exists" in err
    assert f"REFUSED: Run {b_id[:8]} can take no more logging" in out
    assert "END:" in out and "was deleted" in out
    assert "data logged by this process was not stored" in err
    assert f"100 metric point(s) of run {b_id[:8]} were not stored" in err


def test_a_bad_value_is_refused_at_the_call_and_poisons_nothing(ws):
    with cellops.start_run() as other:
        other.log_metric("ok", 1.0)
        with cellops.start_run() as run:
            run.log_metric("m", 1.0)
            for call, message in [
                (lambda: run.log_metric("m", 1, step=2**63), "64-bit integer range"),
                (lambda: run.log_metric("m", 1, step=-(2**63) - 1), "64-bit integer range"),
                (lambda: run.log_metric("\ud800", 1), "not valid Unicode"),
                (lambda: run.log_metric("m", 10**400), "too large for a 64-bit float"),
                (lambda: run.log_param("p", "x\udcff"), "not valid Unicode"),
                (lambda: run.set_tag("\udcff", "v"), "not valid Unicode"),
                (lambda: cellops.start_run(name="\ud800"), "not valid Unicode"),
            ]:
                before = len(ws.buffer)
                with pytest.raises(cellops.InvalidArgumentError, match=message):
                    call()
                assert len(ws.buffer) == before  # nothing buffered
            run.log_metric("m", 2.0, step=2**63 - 1)
        assert run.status == "FINISHED"
    assert other.status == "FINISHED"
    assert list(run.metric_history("m")["step"]) == [0, 2**63 - 1]
    assert cellops.get_run(other.id).metrics == {"ok": 1.0}
    assert ws.buffer.dropped == {}


def test_the_flusher_thread_survives_a_failing_write_and_keeps_flushing(ws, monkeypatch):
    ws.config.update(metric_flush_seconds=0.05)
    writer = ws.buffer
    writer.max_age_s = 0.05
    real = ws.store.metrics.write
    calls = []

    def flaky(rows):
        calls.append(len(rows))
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        real(rows)

    monkeypatch.setattr(writer, "_write", flaky)
    with pytest.warns(cellops.CellopsWarning, match="disk on fire"):
        with cellops.start_run() as run:
            run.log_metric("m", 1)
            deadline = time.time() + 10
            while not writer.dropped and time.time() < deadline:
                time.sleep(0.01)
            assert writer.failure(run.id).count == 1
    with cellops.start_run() as later:
        later.log_metric("m", 2)
        deadline = time.time() + 10
        while len(calls) < 2 and time.time() < deadline:
            time.sleep(0.01)
    assert writer._thread.is_alive() and cellops.get_run(later.id).metrics == {"m": 2.0}
    writer.dropped.clear()  # said and tested; not this test process's exit message


# -- deleting a live run ----------------------------------------------------------------
LIVE_RUN = r"""
import sys, warnings, cellops
warnings.simplefilter("always")
run = cellops.start_run(name="live")
print(run.id, flush=True)
sys.stdin.readline()
run.log_metric("m", 1)
try:
    run.end()
except cellops.RunNotFoundError as exc:
    print("END:", exc, flush=True)
"""


def test_deleting_a_run_whose_process_lives_is_refused_unless_forced(home):
    proc = spawn(LIVE_RUN, home)
    run_id = proc.stdout.readline().strip()
    try:
        res = cli("runs", "delete", run_id[:8], "--yes", home=home)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert f"Run {run_id[:8]} is RUNNING in a live process (pid {proc.pid} on " in res.stderr
        assert "--force" in res.stderr
        with pytest.raises(cellops.RunStateError, match=f"pid {proc.pid}"):
            cellops.delete_runs([run_id])
        assert cellops.get_run(run_id).status == "RUNNING"
        res = cli("runs", "delete", run_id[:8], "--yes", "--force", home=home)
        assert res.returncode == 0, res.stderr
    finally:
        out, err = proc.communicate("go\n", timeout=60)
    assert "END:" in out and "was deleted" in out
    with pytest.raises(cellops.RunNotFoundError):
        cellops.get_run(run_id)


def test_a_run_of_another_host_is_live_while_its_heartbeat_is_fresh(home):
    run = cellops.start_run(activate=False)
    con = db(home)
    now = int(time.time() * 1000)
    con.execute("UPDATE runs SET host = 'elsewhere', pid = 1, heartbeat = ? WHERE id = ?",
                (now, run.id))
    con.commit()
    with pytest.raises(cellops.RunStateError, match=r"pid 1 on elsewhere.*heartbeat \d+ s ago"):
        cellops.delete_runs([run.id])
    stale = now - int((active.LIVE_HEARTBEAT_S + 5) * 1000)
    con.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (stale, run.id))
    con.commit()
    assert cellops.delete_runs([run.id]) == [run.id]


def test_a_child_running_in_a_live_process_protects_its_parent(ws):
    with cellops.start_run() as parent:
        pass
    child = cellops.start_run(parent=parent, activate=False)
    with pytest.raises(cellops.RunStateError, match=f"Run {child.short_id}.*this process"):
        cellops.delete_runs([parent.id])
    child.end()
    assert set(cellops.delete_runs([parent.id])) == {parent.id, child.id}


def test_heartbeats_move_forward_while_the_owner_lives(ws, monkeypatch):
    monkeypatch.setattr(active, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(active, "_heartbeat", None)  # a fresh beating thread, short period
    run = cellops.start_run(activate=False)
    first = ws.store.runs.get(run.id)["heartbeat"]
    deadline = time.time() + 10
    while ws.store.runs.get(run.id)["heartbeat"] == first and time.time() < deadline:
        time.sleep(0.02)
    assert ws.store.runs.get(run.id)["heartbeat"] > first
    run.end()


# -- resumed runs and two processes on one run -----------------------------------------------
VICTIM = r"""
import cellops, time
run = cellops.start_run(name="first-owner")
run.log_metric("m", 1)
cellops.flush()
print(run.id, flush=True)
time.sleep(600)
"""

RESUMER = r"""
import sys, cellops
run = cellops.start_run(run_id=sys.argv[1])
print(run.status, run.error, flush=True)
sys.stdin.readline()
run.log_metric("m", 2)
run.end()
"""


def test_a_run_resumed_by_another_process_is_owned_by_it_and_never_reaped_while_it_lives(home):
    victim = spawn(VICTIM, home)
    run_id = victim.stdout.readline().strip()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    killed = cellops.get_run(run_id)  # a reader reaps the dead owner's run
    assert killed.status == "KILLED" and "ended without ending it" in killed.error

    env = {**os.environ, "CELLOPS_HOME": str(home)}
    resumer = subprocess.Popen([PY, "-c", RESUMER, run_id], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert resumer.stdout.readline().strip() == "RUNNING None"
        for _ in range(3):  # readers reap dead owners; this owner lives
            row = cellops.get_run(run_id)
            cellops.search_runs()
            assert row.status == "RUNNING" and row.error is None
            assert row.info["pid"] == resumer.pid and row.info["end_time"] is None
    finally:
        out, err = resumer.communicate("go\n", timeout=60)
    assert resumer.returncode == 0, err
    run = cellops.get_run(run_id)
    assert run.status == "FINISHED" and run.error is None
    assert list(run.metric_history("m")["step"]) == [0, 1]


FIRST_OWNER = r"""
import sys, cellops
run = cellops.start_run(name="handed-over")
run.log_metric("m", 1)
cellops.flush()
print(run.id, flush=True)
sys.stdin.readline()   # the second process resumes it meanwhile
run.log_metric("m", 10)  # logged before exiting: stored, but the run is not ended here
"""  # exits normally: the atexit handler ends the runs this process still holds

SECOND_OWNER = r"""
import sys, time, cellops
run = cellops.start_run(run_id=sys.argv[1])
print("resumed", flush=True)
sys.stdin.readline()
run.log_metric("m", 2)
cellops.flush()
print("logged", flush=True)
time.sleep(600)
"""


def test_only_the_process_that_resumed_a_run_ends_it(home):
    """Issue #23: the first process's normal exit marked FINISHED a run a second process had
    resumed and still logged to; killing the second then left it FINISHED for good."""
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    first = subprocess.Popen([PY, "-c", FIRST_OWNER], env=env, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_id = first.stdout.readline().strip()
    second = subprocess.Popen([PY, "-c", SECOND_OWNER, run_id], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert second.stdout.readline().strip() == "resumed"
        _, err = first.communicate("\n", timeout=60)  # the first exits normally
        assert first.returncode == 0, err
        run = cellops.get_run(run_id)
        assert run.status == "RUNNING" and run.info["pid"] == second.pid  # the owner's
        assert 10 in list(run.metric_history("m")["value"])  # what the first logged is kept
        second.stdin.write("\n")
        second.stdin.flush()
        assert second.stdout.readline().strip() == "logged"
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)
    killed = cellops.get_run(run_id)  # the owner died: reaped, not left FINISHED
    assert killed.status == "KILLED" and "ended without ending it" in killed.error
    assert sorted(killed.metric_history("m")["value"]) == [1, 2, 10]


def test_a_reader_that_saw_the_old_owner_dead_cannot_kill_the_new_owners_run(ws):
    run = cellops.start_run(activate=False)
    seen_dead = {**ws.store.runs.running_on(run.info["host"])[0], "pid": 999_999_999}
    assert ws.store.runs.reap(seen_dead, 0, "stale") is False  # the row names another owner
    assert cellops.get_run(run.id).status == "RUNNING"
    run.end()


SHARED_LOGGER = r"""
import sys, time, cellops
run = cellops.start_run(run_id=sys.argv[1]) if sys.argv[1] != "-" else None
if run is None:
    run = cellops.start_run(name="shared")
    print(run.id, flush=True)
who, start_at = int(sys.argv[2]), float(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.001)
for i in range(300):
    run.log_metric("loss", who * 1000 + i)
print("done", flush=True)
sys.stdin.readline()
"""


def test_two_processes_logging_one_key_of_one_run_get_distinct_increasing_steps(home):
    (home / "config.json").write_text(json.dumps({"metric_flush_rows": 7}))
    start_at = time.time() + 4
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    first = subprocess.Popen([PY, "-c", SHARED_LOGGER, "-", "1", str(start_at)], env=env,
                             text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    run_id = first.stdout.readline().strip()
    second = subprocess.Popen([PY, "-c", SHARED_LOGGER, run_id, "2", str(start_at)], env=env,
                              text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    for proc in (first, second):
        out, err = proc.communicate("go\n", timeout=120)
        assert proc.returncode == 0 and "done" in out, err
    rows = db(home).execute("SELECT step, value FROM metrics WHERE run_id = ? AND key = 'loss'",
                            (run_id,)).fetchall()
    assert len(rows) == 600
    assert sorted(step for step, _ in rows) == list(range(600))  # distinct, no gaps
    for who in (1, 2):  # each process's points keep their order
        mine = sorted((value, step) for step, value in rows if value // 1000 == who)
        steps = [step for _, step in mine]
        assert steps == sorted(steps)
    latest = db(home).execute("SELECT step FROM latest_metrics WHERE run_id = ? AND key = 'loss'",
                              (run_id,)).fetchone()
    assert latest == (599,)


# -- an artifact write killed halfway ------------------------------------------------------
BIG_WRITER = r"""
import sys, cellops
run = cellops.start_run(name="big")
print(run.id, flush=True)
run.log_artifact(sys.argv[1], "big.bin")
print("logged", flush=True)
"""


def test_sigkill_during_log_artifact_leaves_no_partial_blob_and_gc_collects_the_temp_file(home):
    big = home.parent / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as fh:
        for _ in range(384):
            fh.write(block)
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    env = {**os.environ, "CELLOPS_HOME": str(home)}
    proc = subprocess.Popen([PY, "-c", BIG_WRITER, str(big)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_id = proc.stdout.readline().strip()
    tmp_dir = home / "artifacts" / ".tmp"
    deadline = time.time() + 60
    while not (tmp_dir.is_dir() and any(p.stat().st_size > (8 << 20) for p in tmp_dir.iterdir())):
        assert time.time() < deadline and proc.poll() is None, "the write never got under way"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    assert not (home / "artifacts" / sha[:2] / sha).exists()  # no partial blob under its name
    assert [p.name for p in (home / "artifacts").iterdir() if p.name != ".tmp"] == []
    assert cellops.get_run(run_id).artifacts == []
    left = sum(p.stat().st_size for p in tmp_dir.iterdir())
    assert left > 0
    res = cli("gc", home=home)  # within the grace period: a write may still be going on
    assert "Kept 1 younger than 3600 s" in res.stdout and any(tmp_dir.iterdir())
    res = cli("gc", "--grace", "0", "--json", home=home)
    report = json.loads(res.stdout)
    assert len(report["temp_files"]) == 1 and report["temp_bytes"] == left == report["freed"]
    assert list(tmp_dir.iterdir()) == []
