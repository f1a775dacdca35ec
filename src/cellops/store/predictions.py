"""``store.predictions`` and ``store.endpoints``: the prediction log, its labels, and the
scoring servers that are running.

A prediction row is one request (or one chunk of a batch): its inputs by column and its
outputs as JSON, so a request of a thousand rows is one row here. Rows arrive through a
:class:`~.batch.BatchWriter` (``writer()``), never one transaction per request.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

from .batch import BatchWriter
from .core import Connection, now_ms
from .dialect import SQLITE, as_bytes

# A prediction row as buffered; the model name first (the writer's partition).
PredictionRow = tuple[str, str, int, "int | None", str, int, "str | None", "str | None",
                      "float | None", int, "str | None"]
_COLUMNS = ("model", "request_id", "at", "version", "source", "n_rows", "inputs", "outputs",
            "latency_ms", "status", "error")
_CHUNK = 500  # ids per IN (...) query


class PredictionTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def writer(self, *, max_rows: int = 500, max_age_s: float = 1.0) -> BatchWriter:
        """A batched writer of prediction rows (see :mod:`.batch`)."""
        return BatchWriter(self.write, what="prediction log row(s)", max_rows=max_rows,
                           max_age_s=max_age_s, name="cellops-prediction-log")

    def write(self, rows: Sequence[PredictionRow]) -> None:
        if rows:
            sql = (f"INSERT INTO predictions ({', '.join(_COLUMNS)}) VALUES"
                   f" ({', '.join('?' * len(_COLUMNS))})")
            if self.db.dialect != SQLITE:  # inputs are bytes there (dialect.BYTES_COLUMNS)
                at = _COLUMNS.index("inputs")
                rows = [(*r[:at], as_bytes(r[at]), *r[at + 1:]) for r in rows]
            self.db.write(lambda conn: conn.executemany(sql, rows), once=True)

    def read(self, *, model: str | None = None, version: int | None = None,
             since_ms: int | None = None, until_ms: int | None = None, ok_only: bool = True,
             limit: int | None = None) -> list[sqlite3.Row]:
        """Logged requests in time order (oldest first), filtered."""
        where, args = [], []
        for clause, value in (("model = ?", model), ("version = ?", version),
                              ("at >= ?", since_ms), ("at < ?", until_ms)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if ok_only:
            where.append("status = 200")
        sql = "SELECT * FROM predictions" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY at, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self.db.query(sql, args)

    def labels_for(self, request_ids: Iterable[str]) -> dict[tuple[str, int], tuple[str, int]]:
        """(request_id, row) -> (label JSON, labelled at) for these requests."""
        ids = list(dict.fromkeys(request_ids))
        out: dict[tuple[str, int], tuple[str, int]] = {}
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = self.db.query("SELECT request_id, row, label, at FROM prediction_labels WHERE"
                                 f" request_id IN ({', '.join('?' * len(part))})", part)
            for r in rows:
                out[(r[0], r[1])] = (r[2], r[3])
        return out

    def row_counts(self, request_ids: Iterable[str]) -> dict[str, int]:
        """request_id -> the largest row count logged under it (unknown ids are absent)."""
        ids = list(dict.fromkeys(request_ids))
        out: dict[str, int] = {}
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            rows = self.db.query("SELECT request_id, max(n_rows) FROM predictions WHERE"
                                 f" request_id IN ({', '.join('?' * len(part))}) GROUP BY request_id",
                                 part)
            out.update({r[0]: r[1] for r in rows})
        return out

    def set_labels(self, items: Sequence[tuple[str, int, str]]) -> None:
        """Store labels ``(request_id, row, label JSON)`` in one transaction (a label given
        again replaces the earlier one)."""
        at = now_ms()
        self.db.write(lambda conn: conn.executemany(
            "INSERT INTO prediction_labels (request_id, row, label, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (request_id, row) DO UPDATE SET label = excluded.label, at = excluded.at",
            [(rid, row, label, at) for rid, row, label in items]))

    def models(self) -> list[sqlite3.Row]:
        """Per model and version: requests, rows, first and last time."""
        return self.db.query(
            "SELECT model, version, count(*) AS requests, sum(n_rows) AS rows, min(at) AS first_at,"
            " max(at) AS last_at FROM predictions GROUP BY model, version ORDER BY model, version")


class EndpointTable:
    """``store.endpoints``: scoring servers announce themselves and beat every few seconds,
    so the sidebar can say which versions are being served, where, and how busy."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def register(self, row: dict[str, Any]) -> None:
        now = now_ms()
        values = {**row, "started_at": now, "heartbeat_at": now, "requests_total": 0, "rate": 0.0}
        cols = list(values)
        self.db.write(lambda conn: conn.execute(
            f"INSERT INTO serving_endpoints ({', '.join(cols)}) VALUES"
            f" ({', '.join('?' * len(cols))}) ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
            [values[c] for c in cols]))

    def beat(self, endpoint_id: str, *, version: int | None, requests_total: int,
             rate: float) -> None:
        self.db.write(lambda conn: conn.execute(
            "UPDATE serving_endpoints SET heartbeat_at = ?, version = ?, requests_total = ?,"
            " rate = ? WHERE id = ?", (now_ms(), version, requests_total, rate, endpoint_id)))

    def stop(self, endpoint_id: str) -> None:
        self.db.write(lambda conn: conn.execute(
            "UPDATE serving_endpoints SET stopped_at = ?, rate = 0 WHERE id = ?",
            (now_ms(), endpoint_id)))

    def live(self, *, fresh_ms: int) -> list[sqlite3.Row]:
        """Endpoints not stopped whose last beat is newer than ``fresh_ms`` ago."""
        return self.db.query(
            "SELECT * FROM serving_endpoints WHERE stopped_at IS NULL AND heartbeat_at >= ?"
            " ORDER BY model, version, url", (now_ms() - fresh_ms,))
