"""Queries for metric history and the latest value of each metric."""

from __future__ import annotations

import sqlite3
from typing import Any

from .core import Connection

# A metric row as buffered: (run_id, key, step, value_or_None_for_NaN, timestamp_ms)
MetricRow = tuple[str, str, int, "float | None", int]


def write_metric_rows(conn: sqlite3.Connection, rows: list[MetricRow]) -> None:
    """Insert history rows and move ``latest_metrics`` forward, inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES (?, ?, ?, ?, ?)", rows
    )
    latest: dict[tuple[str, str], MetricRow] = {}
    for row in rows:
        k = (row[0], row[1])
        cur = latest.get(k)
        if cur is None or (row[2], row[4]) >= (cur[2], cur[4]):
            latest[k] = row
    conn.executemany(
        "INSERT INTO latest_metrics (run_id, key, step, value, timestamp) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (run_id, key) DO UPDATE SET"
        "  value = excluded.value, step = excluded.step, timestamp = excluded.timestamp"
        " WHERE excluded.step > latest_metrics.step"
        "  OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)",
        list(latest.values()),
    )


class MetricQueries(Connection):
    def write_metrics(self, rows: list[MetricRow]) -> None:
        if rows:
            self.write(lambda conn: write_metric_rows(conn, rows))

    def metric_history(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ?"
        args: list[Any] = [run_id]
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        sql += " ORDER BY key, step, timestamp, rowid"
        return [dict(r) for r in self.query(sql, args)]

    def next_step(self, run_id: str, key: str) -> int:
        row = self.query_one(
            "SELECT MAX(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
        )
        return 0 if row is None or row[0] is None else int(row[0]) + 1
