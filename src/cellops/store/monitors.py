"""``store.monitors``: monitors, their results per window, alerts and the webhook outbox.

A window's result and the monitor's cursor move in one transaction, and a window is
stored at most once (unique ``window_key`` per monitor), so two ``monitor run`` processes
never evaluate the same window twice. At most one alert per monitor and check is not
resolved (a partial unique index), so a check failing window after window keeps one alert
open and counts the windows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable

from .core import Connection, now_ms

ALERT_STATES = ("open", "acknowledged", "resolved")


class MonitorTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- monitors ------------------------------------------------------------------------------
    def save(self, name: str, model: str, spec: dict[str, Any], user: str | None,
             source: str | None, *, replace: bool) -> bool:
        """Create the monitor, or (``replace``) update its spec keeping its history; returns
        False when it exists and ``replace`` is off."""
        now = now_ms()

        def tx(conn: sqlite3.Connection) -> bool:
            exists = conn.execute("SELECT 1 FROM monitors WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                return False
            if exists:
                conn.execute("UPDATE monitors SET model = ?, spec = ?, source = ?, updated_at = ?"
                             " WHERE name = ?", (model, json.dumps(spec), source, now, name))
            else:
                conn.execute("INSERT INTO monitors (name, model, spec, source, created_at,"
                             " created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (name, model, json.dumps(spec), source, now, user, now))
            return True

        return self.db.write(tx)

    def get(self, name: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM monitors WHERE name = ?", (name,))
        return dict(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM monitors ORDER BY name")]

    def delete(self, name: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM alert_deliveries WHERE alert_id IN"
                         " (SELECT id FROM alerts WHERE monitor = ?)", (name,))
            conn.execute("DELETE FROM alerts WHERE monitor = ?", (name,))
            conn.execute("DELETE FROM monitor_results WHERE monitor = ?", (name,))
            conn.execute("DELETE FROM monitors WHERE name = ?", (name,))

        self.db.write(tx)

    # -- what monitors read ----------------------------------------------------------------------
    def dataset(self, name: str) -> dict[str, Any] | None:
        """The dataset logged last under ``name``."""
        row = self.db.query_one("SELECT * FROM datasets WHERE name = ? ORDER BY id DESC LIMIT 1",
                                (name,))
        return dict(row) if row else None

    def first_prediction_ms(self, model: str) -> int | None:
        row = self.db.query_one("SELECT min(at) FROM predictions WHERE model = ? AND status = 200",
                                (model,))
        return row[0] if row else None

    def predictions_between(self, model: str, start_ms: int, end_ms: int) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM predictions WHERE model = ? AND status = 200 AND"
                             " at >= ? AND at < ? ORDER BY at, id", (model, start_ms, end_ms))

    def predictions_after(self, model: str, after_id: int, rows: int) -> list[sqlite3.Row]:
        """Requests after ``after_id`` (in id order) until they hold ``rows`` predicted rows;
        fewer when the log has no more."""
        out: list[sqlite3.Row] = []
        total, last = 0, after_id
        while total < rows:
            page = self.db.query("SELECT * FROM predictions WHERE model = ? AND status = 200 AND"
                                 " id > ? ORDER BY id LIMIT 1000", (model, last))
            if not page:
                break
            for r in page:
                out.append(r)
                total += r["n_rows"]
                last = r["id"]
                if total >= rows:
                    break
        return out

    # -- results ---------------------------------------------------------------------------------
    def add_result(self, name: str, row: dict[str, Any], cursor_ms: int | None,
                   cursor_id: int | None) -> int | None:
        """Store a window's result and move the cursor, together; None when another process
        stored this window first."""
        cols = list(row)

        def tx(conn: sqlite3.Connection) -> int | None:
            # Another process stored this window first: nothing inserted, no row returned
            # (not an error, which would abort the transaction on PostgreSQL).
            stored = conn.execute(f"INSERT INTO monitor_results (monitor, {', '.join(cols)})"
                                  f" VALUES (?, {', '.join('?' * len(cols))})"
                                  " ON CONFLICT (monitor, window_key) DO NOTHING RETURNING id",
                                  [name] + [row[c] for c in cols]).fetchone()
            if stored is None:
                return None
            conn.execute("UPDATE monitors SET cursor_ms = coalesce(?, cursor_ms),"
                         " cursor_id = coalesce(?, cursor_id) WHERE name = ?",
                         (cursor_ms, cursor_id, name))
            return int(stored[0])

        return self.db.write(tx)

    def results(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A monitor's results, oldest first (the last ``limit``)."""
        sql = "SELECT * FROM monitor_results WHERE monitor = ? ORDER BY window_start DESC, id DESC"
        args: list[Any] = [name]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [dict(r) for r in reversed(self.db.query(sql, args))]

    def result(self, result_id: int) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM monitor_results WHERE id = ?", (result_id,))
        return dict(row) if row else None

    # -- alerts ----------------------------------------------------------------------------------
    def raise_alert(self, monitor: str, check: str, result_id: int, message: str,
                    value: float | None) -> tuple[int, bool]:
        """Open an alert for (monitor, check), or count one more failing window on the one
        not resolved yet. Returns (alert id, whether it was opened now)."""
        now = now_ms()

        def tx(conn: sqlite3.Connection) -> tuple[int, bool]:
            row = conn.execute("SELECT id FROM alerts WHERE monitor = ? AND check_name = ? AND"
                               " state != 'resolved'", (monitor, check)).fetchone()
            if row:
                conn.execute("UPDATE alerts SET last_result = ?, windows = windows + 1,"
                             " message = ?, value = ? WHERE id = ?",
                             (result_id, message, value, row[0]))
                return row[0], False
            cur = conn.execute(
                "INSERT INTO alerts (monitor, check_name, state, message, value, opened_at,"
                " opened_result, last_result, windows, actions) VALUES"
                " (?, ?, 'open', ?, ?, ?, ?, ?, 1, '[]') RETURNING id",
                (monitor, check, message, value, now, result_id, result_id))
            return int(cur.fetchone()[0]), True

        return self.db.write(tx)

    def move_alert(self, alert_id: int, to: str, user: str | None, comment: str | None,
                   allowed_from: Iterable[str]) -> dict[str, Any] | None:
        """Move an alert to ``to`` when it is in one of ``allowed_from``; returns the alert as
        it is afterwards (None when there is no such alert)."""
        now = now_ms()
        froms = tuple(allowed_from)

        def tx(conn: sqlite3.Connection) -> None:
            who = "acknowledged" if to == "acknowledged" else "resolved"
            conn.execute(
                f"UPDATE alerts SET state = ?, {who}_by = ?, {who}_at = ?,"
                f" comment = coalesce(?, comment) WHERE id = ? AND state IN"
                f" ({', '.join('?' * len(froms))})", (to, user, now, comment, alert_id, *froms))

        self.db.write(tx)
        return self.alert(alert_id)

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return dict(row) if row else None

    def alerts(self, *, state: str | None = None, monitor: str | None = None,
               limit: int = 500) -> list[dict[str, Any]]:
        where, args = [], []
        if state == "active":
            where.append("state != 'resolved'")
        elif state is not None:
            where.append("state = ?")
            args.append(state)
        if monitor is not None:
            where.append("monitor = ?")
            args.append(monitor)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        return [dict(r) for r in self.db.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]

    def add_action(self, alert_id: int, action: dict[str, Any]) -> None:
        """Append (or, same ``kind``, update) an action record on the alert."""

        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT actions FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                return
            actions = [a for a in json.loads(row[0] or "[]") if a.get("kind") != action["kind"]]
            actions.append(action)
            conn.execute("UPDATE alerts SET actions = ? WHERE id = ?",
                         (json.dumps(actions, default=str), alert_id))

        self.db.write(tx)

    # -- webhook outbox --------------------------------------------------------------------------
    def enqueue(self, alert_id: int, event: str, url: str, body: dict[str, Any]) -> int:
        now = now_ms()
        return int(self.db.write(lambda conn: conn.execute(
            "INSERT INTO alert_deliveries (alert_id, event, url, body, status, attempts, next_at,"
            " created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
            (alert_id, event, url, json.dumps(body, default=str), now, now)).fetchone()[0]))

    def due_deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query(
            "SELECT * FROM alert_deliveries WHERE status = 'pending' AND next_at <= ?"
            " ORDER BY id LIMIT ?", (now_ms(), limit))]

    def delivered(self, delivery_id: int) -> None:
        self.db.write(lambda conn: conn.execute(
            "UPDATE alert_deliveries SET status = 'delivered', attempts = attempts + 1,"
            " delivered_at = ?, last_error = NULL WHERE id = ?", (now_ms(), delivery_id)))

    def delivery_failed(self, delivery_id: int, error: str, next_at: int | None) -> None:
        """Count a failed attempt: try again at ``next_at``, or give up (None)."""
        self.db.write(lambda conn: conn.execute(
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?,"
            " status = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END,"
            " next_at = coalesce(?, next_at) WHERE id = ?",
            (error[:500], next_at, next_at, delivery_id)))

    def deliveries(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        if alert_id is None:
            return [dict(r) for r in self.db.query("SELECT * FROM alert_deliveries ORDER BY id")]
        return [dict(r) for r in self.db.query(
            "SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY id", (alert_id,))]
