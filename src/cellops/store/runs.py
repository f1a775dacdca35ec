"""``store.runs``, ``store.params`` and ``store.tags``: runs and what describes them."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Mapping

from ..errors import ParamConflictError, RunNotFoundError
from .core import Connection
from .dialect import SQLITE, pg_param_insert, sort_key
from .values import ids_param

RUN_COLUMNS = (
    "id", "experiment_id", "parent_id", "kind", "name", "status", "start_time", "end_time",
    "user", "host", "pid", "proc_start", "notebook_path", "source_name", "source_sha",
    "git_commit", "git_branch", "git_dirty", "git_diff_sha", "environment_id", "error",
    "heartbeat",
)
# Shortest run id prefix that get_run and the CLI accept.
MIN_PREFIX = 4
_RUN_SELECT = (
    "SELECT r.*, e.name AS experiment FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)


class RunTable:
    """``store.runs``: the runs themselves, their owners and their tree."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def insert(
        self, run: Mapping[str, Any], params: Mapping[str, str], tags: Mapping[str, str]
    ) -> None:
        cols = [c for c in RUN_COLUMNS if c in run]

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [run[c] for c in cols],
            )
            _insert_params(conn, run["id"], params)
            _upsert_tags(conn, run["id"], tags)

        self.db.write(tx)

    def named(self, name: str, experiment: str | None = None, limit: int = 6) -> list[str]:
        """Ids of the runs called ``name`` (in the experiment of that name, when given),
        newest first."""
        sql = "SELECT r.id FROM runs r"
        args: list[Any] = [name]
        if experiment is not None:
            sql += " JOIN experiments e ON e.id = r.experiment_id AND e.name = ?"
            args.insert(0, experiment)
        sql += " WHERE r.name = ? ORDER BY r.start_time DESC, r.rowid DESC LIMIT ?"
        return [row[0] for row in self.db.query(sql, [*args, limit])]

    def exists(self, run_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM runs WHERE id = ?", (run_id,)) is not None

    def resolve_id(self, run_id: str) -> str:
        """Full id for an id or a unique prefix of at least ``MIN_PREFIX`` characters.

        A prefix matches literally (``_``, ``%`` and ``\\`` are plain characters): it is
        an index range, never a LIKE pattern.
        """
        if not isinstance(run_id, str) or not run_id:
            raise RunNotFoundError(f"A run id must be a non-empty string, not {run_id!r}.")
        row = self.db.query_one("SELECT id FROM runs WHERE id = ?", (run_id,))
        if row is not None:
            return row[0]
        if len(run_id) < MIN_PREFIX:
            raise RunNotFoundError(
                f"Run id prefix {run_id!r} is too short: give at least {MIN_PREFIX} characters "
                "of the id (`cellops runs list` shows 8)."
            )
        rows = self.db.query("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                             (run_id, run_id + "\U0010ffff"))
        if len(rows) == 1:
            return rows[0][0]
        if len(rows) > 1:
            raise RunNotFoundError(
                f"Run id prefix {run_id!r} is ambiguous: it matches "
                + ", ".join(r[0][:12] for r in rows[:5])
                + (" and more" if len(rows) > 5 else "")
                + ". Give more characters."
            )
        raise RunNotFoundError(
            f"No run with id {run_id!r} in {self.db.where}. "
            "List runs with `cellops runs list` or cellops.search_runs()."
        )

    def get(self, run_id: str) -> dict[str, Any]:
        row = self.db.query_one(f"{_RUN_SELECT} WHERE r.id = ?", (run_id,))
        if row is None:
            raise RunNotFoundError(f"No run with id {run_id!r}.")
        return dict(row)

    def get_many(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"{_RUN_SELECT} WHERE r.id IN (SELECT value FROM json_each(?))", (ids_param(run_ids),)
        )
        return [dict(r) for r in rows]

    def children(self, run_id: str) -> list[str]:
        rows = self.db.query(
            "SELECT id FROM runs WHERE parent_id = ? ORDER BY start_time, rowid", (run_id,)
        )
        return [r[0] for r in rows]

    def set_status(
        self,
        run_id: str,
        status: str,
        end_time: int | None,
        error: str | None = None,
        *,
        only_if_running: bool = False,
        metric_rows: list[tuple] | None = None,
        owner: tuple[str, int] | None = None,
    ) -> str:
        """Set a run's status (and flush ``metric_rows`` in the same transaction). With
        ``owner`` (host, pid), a RUNNING run is only ended by that owner. Returns ``set``,
        ``gone`` (no such run) or ``owned`` (another process owns it: only the rows were
        written)."""
        from .metrics import write_metric_rows

        sql = "UPDATE runs SET status = ?, end_time = ?, error = COALESCE(?, error) WHERE id = ?"
        args: list[Any] = [status, end_time, error, run_id]
        if only_if_running:
            sql += " AND status = 'RUNNING'"
        if owner is not None:
            sql += " AND (status != 'RUNNING' OR (host = ? AND pid = ?))"
            args += list(owner)

        def tx(conn: sqlite3.Connection) -> Any:
            if metric_rows:
                write_metric_rows(conn, metric_rows)
            return conn.execute(sql, args)

        # The count is read after the commit: on PostgreSQL the transaction is one round
        # trip. Whether a run not updated is gone or someone else's is asked afterwards.
        # With points, it lands once: a retry after a lost COMMIT reply sets the status only.
        written = self.db.write_for_run(run_id, tx, once=bool(metric_rows),
                                        settled=lambda conn: conn.execute(sql, args))
        if written.rowcount:
            return "set"
        return "owned" if self.exists(run_id) else "gone"

    def running_on(self, host: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT id, pid, host, proc_start, start_time FROM runs"
            " WHERE status = 'RUNNING' AND host = ?",
            (host,),
        )
        return [dict(r) for r in rows]

    def reap(self, owner: Mapping[str, Any], end_time: int, error: str) -> bool:
        """End ``owner['id']`` KILLED, but only while the process seen dead still owns it."""
        return self.db.write(lambda conn: conn.execute(
            "UPDATE runs SET status = 'KILLED', end_time = ?, error = ? WHERE id = ?"
            " AND status = 'RUNNING' AND pid IS ? AND host IS ? AND proc_start IS ?",
            (end_time, error, owner["id"], owner["pid"], owner["host"], owner["proc_start"]),
        ).rowcount > 0)

    def owner(self, run_id: str) -> dict[str, Any] | None:
        """The process that owns a run now (pid, host, proc_start, user, heartbeat,
        start_time) and its status; None when the run is gone."""
        row = self.db.query_one("SELECT pid, host, proc_start, user, heartbeat, start_time,"
                                " status FROM runs WHERE id = ?", (run_id,))
        return dict(row) if row else None

    def claim(self, run_id: str, owner: Mapping[str, Any]) -> None:
        """Make the process described by ``owner`` (pid, host, proc_start, heartbeat) own a
        run and mark it RUNNING again; its end time and error go with its previous end."""
        self.db.write(lambda conn: conn.execute(
            "UPDATE runs SET status = 'RUNNING', end_time = NULL, error = NULL, pid = ?,"
            " host = ?, proc_start = ?, heartbeat = ? WHERE id = ?",
            (owner["pid"], owner["host"], owner["proc_start"], owner["heartbeat"], run_id)))

    def beat(self, run_ids: Iterable[str], when: int) -> None:
        """Record that the process owning these runs is alive."""
        self.db.write(lambda conn: conn.execute(
            "UPDATE runs SET heartbeat = ? WHERE status = 'RUNNING'"
            " AND id IN (SELECT value FROM json_each(?))", (when, ids_param(run_ids))))

    def running_in_tree(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The RUNNING runs among ``run_ids`` and their descendants, with their owners."""
        rows = self.db.query(
            "WITH RECURSIVE tree(id) AS ("
            " SELECT value FROM json_each(?)"
            " UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id)"
            " SELECT id, pid, host, proc_start, user, heartbeat, start_time FROM runs"
            " WHERE status = 'RUNNING' AND id IN (SELECT id FROM tree)",
            (ids_param(run_ids),),
        )
        return [dict(r) for r in rows]

    def tree(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        """``run_ids`` and all their descendants that exist: id, name, kind, parent,
        experiment and status of each (what deleting them removes)."""
        rows = self.db.query(
            "WITH RECURSIVE tree(id) AS ("
            " SELECT value FROM json_each(?)"
            " UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id)"
            " SELECT r.id, r.name, r.kind, r.parent_id, r.status, e.name AS experiment"
            " FROM runs r JOIN experiments e ON e.id = r.experiment_id"
            " WHERE r.id IN (SELECT id FROM tree)",
            (ids_param(run_ids),),
        )
        return [dict(r) for r in rows]

    def delete(self, run_ids: Iterable[str]) -> list[str]:
        """Delete runs and all their descendants and rows; return every id deleted."""

        def tx(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "WITH RECURSIVE tree(id) AS ("
                " SELECT value FROM json_each(?)"
                " UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id)"
                " SELECT id FROM tree WHERE id IN (SELECT id FROM runs)",
                (ids_param(run_ids),),
            ).fetchall()
            doomed = ids_param(r[0] for r in rows)
            for table in ("params", "tags", "metrics", "latest_metrics", "artifacts",
                          "run_datasets", "cells", "step_cache"):
                conn.execute(
                    f"DELETE FROM {table} WHERE run_id IN (SELECT value FROM json_each(?))",
                    (doomed,),
                )
            conn.execute("DELETE FROM pipeline_steps WHERE pipeline_run_id IN"
                         " (SELECT value FROM json_each(?))", (doomed,))
            # A pipeline run that outlives a deleted step run keeps the step, without its run.
            conn.execute("UPDATE pipeline_steps SET run_id = NULL WHERE run_id IN"
                         " (SELECT value FROM json_each(?))", (doomed,))
            conn.execute("DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))", (doomed,))
            return [r[0] for r in rows]

        return self.db.write(tx)


class ParamTable:
    """``store.params``: immutable text values per (run, key)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def log(self, run_id: str, params: Mapping[str, str]) -> None:
        """Store params; the same value again is a no-op, another raises ParamConflictError."""
        self.db.write_for_run(run_id, lambda conn: _insert_params(conn, run_id, params))


class TagTable:
    """``store.tags``: mutable text values per (run, key)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def set(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.db.write_for_run(run_id, lambda conn: _upsert_tags(conn, run_id, tags))

    def delete(self, run_id: str, key: str) -> bool:
        return self.db.write(
            lambda conn: conn.execute(
                "DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key)
            ).rowcount > 0
        )


_PARAMS_PER_INSERT = 500  # 2,000 bound values at most (SQLite allows 32,766)


def _insert_params(conn: sqlite3.Connection, run_id: str, params: Mapping[str, str]) -> None:
    """Insert params, many per statement; a key already stored with another value raises
    :class:`ParamConflictError` (the first such key in ``params``' order), and the caller's
    transaction rolls back what this call inserted."""
    stored_sort = _stores_sort_value(conn)
    items = list(params.items())
    if stored_sort and items and len(items) <= _PARAMS_PER_INSERT:
        # PostgreSQL: the insert and its clash check go with the commit, no result read.
        for sql, values in pg_param_insert(run_id, items):
            conn.execute_pg(sql, values, prepare=True)
        return
    existing: set[str] = set()
    for at in range(0, len(items), _PARAMS_PER_INSERT):
        chunk = items[at:at + _PARAMS_PER_INSERT]
        if stored_sort:
            rows = [(run_id, k, v, sort_key(v)) for k, v in chunk]
            head, one = "INSERT INTO params (run_id, key, value, sort_value) VALUES ", "(?, ?, ?, ?)"
        else:
            rows = [(run_id, k, v) for k, v in chunk]
            head, one = "INSERT INTO params (run_id, key, value) VALUES ", "(?, ?, ?)"
        inserted = {r[0] for r in conn.execute(
            head + ", ".join([one] * len(rows)) + " ON CONFLICT (run_id, key) DO NOTHING"
            " RETURNING key", [v for row in rows for v in row]).fetchall()}
        existing.update(k for k, _ in chunk if k not in inserted)
    if not existing:
        return
    stored = dict(conn.execute(
        "SELECT key, value FROM params WHERE run_id = ? AND key IN"
        " (SELECT value FROM json_each(?))", (run_id, ids_param(sorted(existing)))).fetchall())
    for key, value in items:
        if key in existing and stored.get(key) != value:
            raise ParamConflictError(run_id, key, stored.get(key), value)


def _stores_sort_value(conn: Any) -> bool:
    """Whether ``sort_value`` is written by the store (PostgreSQL) rather than computed by
    the database (SQLite's generated column)."""
    return getattr(conn, "dialect", SQLITE) != SQLITE


def _upsert_tags(conn: sqlite3.Connection, run_id: str, tags: Mapping[str, str]) -> None:
    if _stores_sort_value(conn):
        conn.executemany(
            "INSERT INTO tags (run_id, key, value, sort_value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
            " sort_value = excluded.sort_value",
            [(run_id, k, v, sort_key(v)) for k, v in tags.items()])
        return
    conn.executemany(
        "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"
        " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        [(run_id, k, v) for k, v in tags.items()],
    )
