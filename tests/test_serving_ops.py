"""The scoring server in operation: following an alias under load, SIGTERM with a request in
flight, several workers, and a prediction log that stays bounded when the database is slow."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_kit import COLUMNS, Client, numeric_frame, register_numeric, serve_process
from sklearn.dummy import DummyClassifier
from sklearn.neighbors import KNeighborsClassifier

import cellops
from cellops.serving import PredictionLog


def test_an_alias_move_swaps_versions_under_load_without_a_failed_or_mixed_response(ws):
    """Three versions that each answer only their own number; clients never stop while the
    alias moves 1 -> 2 -> 3: every reply is 200 and comes whole from one version."""
    X, _ = numeric_frame()
    y = np.arange(len(X)) % 3
    for constant in (0, 1, 2):  # version v answers v - 1
        model = DummyClassifier(strategy="constant", constant=constant).fit(X, y)
        cellops.register_model(model, "const", X_sample=X.head())
    cellops.set_alias("const", "live", 1)
    server = cellops.serve("models:/const@live", poll_interval=0.05)
    rows = X.head(20).to_numpy().tolist()
    replies: list[tuple[int, str, list]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        c = Client(server.url)
        try:
            while not stop.is_set():
                r = c.invocations({"instances": rows})
                replies.append((r.status, r.headers.get("x-model-version"),
                                r.json.get("predictions")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for version in (2, 3):
            time.sleep(1.0)
            cellops.set_alias("const", "live", version)
        deadline = time.monotonic() + 10
        while server.model.version != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert len(replies) > 100
    assert {status for status, _, _ in replies} == {200}
    for _, version, predictions in replies:
        assert predictions == [int(version) - 1] * 20  # one version answered the whole request
    seen = [int(v) for _, v, _ in replies]
    assert {1, 2, 3} <= set(seen) and seen[-1] == 3
    metrics = Client(server.url).get("/metrics").body.decode()
    assert "cellops_serving_model_swaps_total 2.0" in metrics
    assert 'cellops_serving_model_version{model="const"} 3.0' in metrics
    assert [e.version for e in cellops.serving_endpoints("const")] == [3]
    server.stop()
    log = cellops.predictions("const")
    assert (log["prediction"] == log["version"] - 1).all()  # the log says who answered
    assert log["request_id"].nunique() == len(replies)


def test_a_broken_alias_target_keeps_the_version_being_served(ws, caplog):
    version, _, X = register_numeric()
    server = cellops.serve("models:/churn@champion", poll_interval=0.05)
    try:
        second = cellops.register_model(cellops.load_model("models:/churn/1"), "churn",
                                        X_sample=X.head())
        blob = Path(cellops.workspace().artifacts.path(second.sha256))
        os.chmod(blob, 0o644)
        blob.write_bytes(b"not a model")  # the file no longer matches its sha256
        with caplog.at_level(logging.WARNING, logger="cellops.serving"):
            cellops.set_alias("churn", "champion", second.version)
            time.sleep(0.5)
        assert server.model.version == 1
        assert Client(server.url).invocations({"instances": X.head(2).to_numpy().tolist()}).status == 200
        assert "still serving version 1" in caplog.text
    finally:
        server.stop()


def test_sigterm_lets_the_request_in_flight_finish_and_flushes_the_log(ws):
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.random((20_000, 2)), columns=["a", "b"])
    slow = KNeighborsClassifier(algorithm="brute").fit(train, (train.a > train.b).astype(int))
    cellops.register_model(slow, "slow", X_sample=train.head())
    proc, url = serve_process("models:/slow/1")
    query = rng.random((60_000, 2))
    result: dict = {}

    def big_request() -> None:
        c = Client(url, timeout=120)
        result["reply"] = c.invocations({"instances": query.tolist()},
                                        headers={"X-Request-ID": "in-flight"})

    sender = threading.Thread(target=big_request)
    sender.start()
    time.sleep(0.6)  # received and being predicted (about a second)
    proc.send_signal(signal.SIGTERM)
    sender.join(60)
    out, err = proc.communicate(timeout=60)
    reply = result["reply"]
    assert reply.status == 200 and len(reply.json["predictions"]) == 60_000
    assert reply.json["predictions"][:50] == slow.predict(pd.DataFrame(query[:50], columns=["a", "b"])).tolist()
    assert proc.returncode in (0, -signal.SIGTERM)
    log = cellops.predictions("slow")
    assert list(log["request_id"].unique()) == ["in-flight"] and len(log) == 60_000
    access = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    hit = next(a for a in access if a["path"] == "/invocations")
    assert (hit["status"], hit["request_id"], hit["model"], hit["version"], hit["rows"]) == \
        (200, "in-flight", "slow", 1, 60_000)
    assert hit["ms"] > 0 and hit["method"] == "POST" and "time" in hit
    assert cellops.serving_endpoints() == []
    with pytest.raises(OSError):
        Client(url, timeout=2).get("/ping")


def test_two_workers_share_the_port_and_both_log(ws):
    _, model, X = register_numeric()
    proc, url = serve_process("models:/churn@champion", "--workers", "2", "--no-access-log")
    try:
        rows = X.head(4).to_numpy().tolist()
        ids = []
        for _ in range(30):
            reply = Client(url).invocations({"instances": rows})  # a new connection each time
            assert reply.status == 200 and reply.json["predictions"] == model.predict(X.head(4)).tolist()
            ids.append(reply.headers["x-request-id"])
        deadline = time.monotonic() + 20
        while len(cellops.serving_endpoints()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        found = cellops.serving_endpoints()
        assert len({e.pid for e in found}) == 2 and {e.version for e in found} == {1}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert sorted(cellops.predictions("churn")["request_id"].unique()) == sorted(ids)


# -- the prediction log's bound --------------------------------------------------------------

def _entry(plog: PredictionLog, i: int):
    from cellops.serving import Inputs

    return plog.entry(request_id=f"r{i:04d}", model="m", version=1, source="http",
                      inputs=Inputs(["x"], array=np.array([[float(i)]])), outputs=np.array([i]),
                      latency_ms=0.1, status=200)


def _lock(db_path):
    holder = sqlite3.connect(db_path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write
    return holder


def test_a_slow_database_drops_the_oldest_entries_counted_and_warned(ws, db_path, caplog):
    plog = PredictionLog(ws, max_pending=50, flush_rows=10, flush_s=0.05)
    holder = _lock(db_path)
    try:
        with caplog.at_level(logging.WARNING, logger="cellops.serving"):
            for i in range(300):
                plog.record(_entry(plog, i))  # never waits: the database is locked throughout
        assert plog.dropped >= 300 - 50 - 2 * 10  # the queue, plus what the writer holds
        assert plog.depth <= 50 + 2 * 10
        assert "dropped" in caplog.text and "behind the database" in caplog.text
    finally:
        holder.rollback()
        holder.close()
    assert plog.close(timeout=30)
    ids = list(cellops.predictions("m")["request_id"])
    assert len(ids) == 300 - plog.dropped
    assert ids[-50:] == [f"r{i:04d}" for i in range(250, 300)]  # the newest are kept


def test_large_requests_are_bounded_by_memory_too(ws, db_path):
    from cellops.serving import Inputs

    plog = PredictionLog(ws, max_pending=10_000, max_pending_mb=1, flush_rows=1, flush_s=0.05)
    holder = _lock(db_path)
    try:
        for i in range(20):  # 256 KiB of inputs each
            plog.record(plog.entry(request_id=f"big{i:02d}", model="m", version=1, source="http",
                                   inputs=Inputs(["x"], array=np.full((32_768, 1), float(i))),
                                   outputs=np.zeros(32_768), latency_ms=1.0, status=200))
        assert plog._bytes <= 2**20 and plog.dropped >= 20 - 4 - 2  # 1 MiB queued, 2 in the writer
    finally:
        holder.rollback()
        holder.close()
    assert plog.close(timeout=30)
    kept = cellops.predictions("m")["request_id"].unique().tolist()
    assert kept[-3:] == ["big17", "big18", "big19"] and len(kept) == 20 - plog.dropped


def test_block_mode_waits_for_room_and_loses_nothing(ws, db_path):
    plog = PredictionLog(ws, max_pending=5, block=True, flush_rows=5, flush_s=0.05)
    holder = _lock(db_path)
    done = threading.Event()

    def produce() -> None:
        for i in range(40):
            plog.record(_entry(plog, i))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.5)
    assert not done.is_set()  # blocked: the database is locked and the queue is full
    holder.rollback()
    holder.close()
    producer.join(30)
    assert done.is_set() and plog.close(timeout=30) and plog.dropped == 0
    assert list(cellops.predictions("m")["request_id"]) == [f"r{i:04d}" for i in range(40)]


def test_recording_after_close_is_refused(ws):
    plog = PredictionLog(ws)
    assert plog.close()
    with pytest.raises(cellops.CellopsError, match="closed"):
        plog.record(_entry(plog, 0))


def test_the_signature_columns_are_what_the_log_stores(ws):
    """A request that names columns in another order is logged in the signature's order."""
    _, _, X = register_numeric()
    server = cellops.serve("models:/churn/1")
    try:
        Client(server.url).invocations({"dataframe_split": {
            "columns": ["score", "income", "age"], "data": [[0.25, 1000.0, 33.0]]}})
        assert server.log.flush()
    finally:
        server.stop()
    row = cellops.predictions("churn").iloc[0]
    assert [row[c] for c in COLUMNS] == [33.0, 1000.0, 0.25]


def test_health_checks_stay_answered_while_a_hostile_request_is_handled(ws):
    """Issue #23: a 0.6 MB CSV header of 100,000 columns took 11 s to refuse and a JSON of
    1,000,000 rows held /ping for 8 s: bodies are bounded before parsing and parsed off
    the event loop."""
    from cellops.serving.payloads import MAX_VALUES

    register_numeric()
    cellops.flush()
    proc, url = serve_process("models:/churn@champion", "--no-access-log")
    try:
        client = Client(url, timeout=60)
        t0 = time.monotonic()
        header = b",".join(b"c%d" % i for i in range(100_000)) + b"\n" + b"1\n"
        reply = client.invocations(header, content_type="text/csv")
        assert reply.status == 400 and "100,000 columns" in reply.json["message"]
        huge = json.dumps({"instances": [[40.0, 50_000.0, 0.5]] * 1_000_000}).encode()
        reply = client.invocations(huge)
        assert reply.status == 413 and f"at most {MAX_VALUES:,}" in reply.json["message"]
        assert time.monotonic() - t0 < 5  # both refused before anything was parsed

        # The largest body the server takes, parsed while /ping is asked again and again.
        rows = MAX_VALUES // 3 - 10
        big = json.dumps({"instances": [[40.0, 50_000.0, 0.5]] * rows}).encode()
        outcome: dict = {}

        def send() -> None:
            outcome["reply"] = Client(url, timeout=120).invocations(big)

        thread = threading.Thread(target=send)
        thread.start()
        waits = []
        while thread.is_alive():
            t = time.monotonic()
            assert Client(url, timeout=30).get("/ping").status == 200
            waits.append(time.monotonic() - t)
            time.sleep(0.02)
        thread.join()
        assert outcome["reply"].status == 200 and len(outcome["reply"].json["predictions"]) == rows
        assert len(waits) >= 3 and max(waits) < 2.0, waits  # was 8-11 s with parsing on the loop
    finally:
        proc.terminate()
        proc.wait(30)
