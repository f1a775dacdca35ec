"""``store.metrics``: every logged point, and the latest value of each metric."""

from __future__ import annotations

import json
import math
import sqlite3
from itertools import chain
from typing import Any, Callable, Iterable

from ..errors import RunStateError
from .batch import BatchWriter, Dropped
from .core import Connection
from .dialect import PG_METRIC_ROWS, POSTGRESQL, SQLITE, pg_metric_insert
from .values import from_stored

# A metric row as buffered: (run_id, key, step or None for "the next one",
# value or None for NaN, timestamp_ms)
MetricRow = tuple[str, str, "int | None", "float | None", int]


ROWS_PER_INSERT = 200  # 1,000 bound values a statement (SQLite allows 32,766)
_MULTI_INSERT = ("INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES "
                 + ", ".join(["(?, ?, ?, ?, ?)"] * ROWS_PER_INSERT))


def fill_steps(rows: Iterable[MetricRow], top: dict[tuple[str, str], int],
               first: Callable[[str, str], int]) -> list[MetricRow]:
    """Give rows logged without a step the next step of their key, in order: one past the
    highest step of that (run, key) so far — ``top``, updated in place — which starts at
    ``first(run_id, key)`` (the highest stored step, -1 for none). The one rule for the
    steps written (:func:`write_metric_rows`) and the steps a live chart shows
    (:class:`cellops.tracking.run.MetricListener`)."""
    out: list[MetricRow] = []
    append = out.append  # runs once per logged point: kept to a few lookups
    for row in rows:
        k = (row[0], row[1])
        highest = top.get(k)
        if highest is None:
            highest = first(row[0], row[1])
        step = row[2]
        if step is None:
            top[k] = highest + 1
            append((row[0], row[1], highest + 1, row[3], row[4]))
        else:
            top[k] = step if step > highest else highest
            append(row)
    return out


def _with_steps(conn: sqlite3.Connection, rows: list[MetricRow]) -> list[MetricRow]:
    """Give rows logged without a step the next step of their key, in order
    (:func:`fill_steps`).

    Done inside the write transaction, which holds the database's write lock: two
    processes logging one key of one run get distinct, increasing steps. The next step
    follows the highest stored one (``latest_metrics`` holds it) and any explicit step
    logged before it in the batch.
    """
    wanted: dict[str, set[str]] = {}
    for run_id, key, step, _, _ in rows:
        if step is None:
            wanted.setdefault(run_id, set()).add(key)
    if hasattr(conn, "advisory_lock"):  # PostgreSQL: writers of one run take turns here
        for run_id in sorted(wanted):
            conn.advisory_lock("steps:" + run_id)
    highest: dict[tuple[str, str], int] = {}
    for run_id, keys in wanted.items():  # one query per run, not one per key
        for key, step in conn.execute(
                "SELECT key, step FROM latest_metrics WHERE run_id = ? AND key IN"
                " (SELECT value FROM json_each(?))", (run_id, json.dumps(sorted(keys)))):
            highest[(run_id, key)] = step

    def stored(run_id: str, key: str) -> int:
        found = highest.get((run_id, key))
        if found is None and key not in wanted.get(run_id, ()):  # a key with explicit steps only
            row = conn.execute("SELECT step FROM latest_metrics WHERE run_id = ? AND key = ?",
                               (run_id, key)).fetchone()
            found = None if row is None else row[0]
        return -1 if found is None else found

    return fill_steps(rows, {}, stored)


def _values_insert(head: str, rows: list[tuple], tail: str = "") -> tuple[str, list]:
    """One ``INSERT ... VALUES (...), (...)`` statement for ``rows`` (and its values):
    a statement per batch, not per row."""
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    return head + ", ".join([one] * len(rows)) + tail, list(chain.from_iterable(rows))


_LATEST_UPSERT = (
    " ON CONFLICT (run_id, key) DO UPDATE SET"
    "  value = excluded.value, step = excluded.step, timestamp = excluded.timestamp"
    " WHERE excluded.step > latest_metrics.step"
    "  OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)")


def _steps_on_server(conn: Any, rows: list[MetricRow]) -> bool:
    """Whether the server numbers these rows' steps (:func:`.dialect.pg_metric_insert`):
    PostgreSQL, a small batch (a run's end: the round trip saved is most of its cost; a
    large flush is cheaper as plain multi-row inserts after one read of the steps), and
    no key of a run has rows both with and without a step."""
    if getattr(conn, "dialect", SQLITE) != POSTGRESQL or len(rows) > PG_METRIC_ROWS:
        return False
    given: dict[tuple[str, str], bool] = {}
    for row in rows:
        k = (row[0], row[1])
        if given.setdefault(k, row[2] is None) != (row[2] is None):
            return False
    return True


def write_metric_rows(conn: sqlite3.Connection, rows: list[MetricRow]) -> None:
    """Insert history rows and move ``latest_metrics`` forward, inside the caller's transaction."""
    if _steps_on_server(conn, rows):  # PostgreSQL: no step read before the insert
        for run_id in sorted({row[0] for row in rows if row[2] is None}):
            conn.advisory_lock("steps:" + run_id)
        conn.execute_pg(*pg_metric_insert(rows), prepare=True)
        return
    if any(row[2] is None for row in rows):
        rows = _with_steps(conn, rows)
    # Many rows per statement: a third less time a point than one statement per row.
    full = len(rows) - len(rows) % ROWS_PER_INSERT
    if full:
        conn.executemany(_MULTI_INSERT, [tuple(chain.from_iterable(rows[i:i + ROWS_PER_INSERT]))
                                         for i in range(0, full, ROWS_PER_INSERT)])
    if rows[full:]:
        conn.execute(*_values_insert(
            "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES ", rows[full:]))
    latest: dict[tuple[str, str], MetricRow] = {}
    for row in rows:
        k = (row[0], row[1])
        cur = latest.get(k)
        if cur is None or row[2] > cur[2] or (row[2] == cur[2] and row[4] >= cur[4]):
            latest[k] = row
    newest = list(latest.values())  # one row per (run, key): one upsert statement may take them
    for at in range(0, len(newest), ROWS_PER_INSERT):
        conn.execute(*_values_insert(
            "INSERT INTO latest_metrics (run_id, key, step, value, timestamp) VALUES ",
            newest[at:at + ROWS_PER_INSERT], _LATEST_UPSERT))


class MetricTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def writer(self, *, max_rows: int = 5000, max_age_s: float = 2.0) -> BatchWriter:
        """A batched writer of metric points into this table (see :mod:`.batch`): a point
        logged in a loop costs a list append; a run whose points the database refuses loses
        only its own, and logging more to it raises."""
        return BatchWriter(self.write, what="metric point(s)", refuse=_refuse,
                           max_rows=max_rows, max_age_s=max_age_s, name="cellops-metric-flush")

    def write(self, rows: list[MetricRow]) -> None:
        """Store buffered points in one transaction (what the batched writer calls)."""
        if rows:
            self.db.write_for_run({r[0] for r in rows}, lambda conn: write_metric_rows(conn, rows),
                                  once=True)

    def history(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
        """Points of a run (of one key), in key and step order; values NaN-restored."""
        sql = "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ?"
        args: list[Any] = [run_id]
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        sql += " ORDER BY key, step, timestamp, rowid"
        out = []
        for r in self.db.query(sql, args):
            row = dict(r)
            row["value"] = from_stored(row["value"])
            out.append(row)
        return out

    def next_step(self, run_id: str, key: str) -> int:
        row = self.db.query_one(
            "SELECT step FROM latest_metrics WHERE run_id = ? AND key = ?", (run_id, key))
        return 0 if row is None else int(row[0]) + 1

    def last_activity(self, run_id: str) -> int | None:
        """When the run last logged a point (ms), or None."""
        row = self.db.query_one("SELECT MAX(timestamp) FROM metrics WHERE run_id = ?", (run_id,))
        return row[0] if row else None


def restore_nan(rows: list[tuple]) -> list[tuple[str, str, float]]:
    """(run_id, key, value) rows of ``latest_metrics`` with NaN back (stored as NULL)."""
    nan = math.nan
    return [(r[0], r[1], nan if r[2] is None else r[2]) for r in rows]


def _refuse(run_id: str, failure: Dropped) -> Exception:
    return RunStateError(
        f"Run {run_id[:8]} can take no more logging from this process: {failure.count} metric "
        f"point(s) logged to it could not be stored ({failure.cause}) and were dropped. "
        "Start a new run with cellops.start_run()."
    )
