"""Connection handling: WAL, busy timeout, foreign keys, migrations, retries.

Every write is one short ``BEGIN IMMEDIATE`` transaction run through
:meth:`Connection.write`, which retries the whole transaction when SQLite reports
the database busy or locked. Taking the write lock at BEGIN (rather than upgrading
a read lock mid-transaction) is what lets SQLite's busy handler wait instead of
failing, and the retry loop covers the cases the busy handler does not (a
brand-new file being switched to WAL, WAL recovery). After ``retry_budget_s`` a
:class:`~cellops.errors.StoreBusyError` says which file is held and what to do;
"database is locked" never reaches a user directly.

A domain operation that writes several tables, or checks a rule before it writes, takes
a unit of work: ``with store.transaction() as tx:`` opens one ``BEGIN IMMEDIATE``
transaction and hands out the same per-concept tables (``tx.runs``, ``tx.registry``,
``tx.audit``, ...) bound to it: their reads see the transaction's own writes, their
writes join it, and everything commits together or not at all. Holding the write lock
from the first statement, a rule checked inside the block (who may delete, whether an
alias is protected) cannot be overtaken by another process's write. Writes made on the
store itself by the thread that holds the transaction join it too.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import RunNotFoundError, StoreBusyError, StoreError
from .schema import LATEST_VERSION, MIGRATIONS

T = TypeVar("T")

_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (extended codes share the low byte)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _to_number(value: Any) -> float | None:
    """SQL function: a param/tag text as a number, or NULL when it is not one."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def deleted_runs_error(db: Any, run_ids: str | Iterable[str]) -> RunNotFoundError | None:
    """After a constraint error writing rows of ``run_ids``: the error that says which of
    them were deleted meanwhile (by another process, say), or None when none was (either
    engine's :meth:`write_for_run`)."""
    ids = [run_ids] if isinstance(run_ids, str) else sorted(set(run_ids))
    gone = [i for i in ids if db.query_one("SELECT 1 FROM runs WHERE id = ?", (i,)) is None]
    if not gone:
        return None
    return RunNotFoundError(
        f"Run {', '.join(i[:8] for i in gone)} no longer exists: it was deleted "
        "(`cellops runs delete`, perhaps from another process) while this process was "
        "logging to it"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


class Connection:
    """One SQLite connection per process (reopened after fork), shared by threads."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 10.0,
        retry_budget_s: float = 120.0,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.retry_budget_s = retry_budget_s
        if str(synchronous).upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise StoreError(
                f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}; "
                "fix it in the workspace's .cellops/config.json (or config.toml)."
            )
        self.synchronous = str(synchronous).upper()
        self.lock = threading.RLock()  # one connection, shared by this process's threads
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        # How often each kind of statement had to be retried because the database was busy.
        # With BEGIN IMMEDIATE and the busy timeout, writes and migrations should never need
        # one; the tests hold the store to that.
        self.retries: dict[str, int] = {"configure": 0, "migrate": 0, "write": 0, "read": 0}
        self._tx_thread: int | None = None  # the thread inside transaction(), if any

    dialect = "sqlite"

    @property
    def where(self) -> str:
        """What messages call this database: the workspace folder holding it."""
        return str(self.path.parent)

    # -- opening -----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=self.busy_timeout_s,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the workspace database {self.path}: {exc}. "
                "Check that the folder exists and is writable."
            ) from exc
        conn.row_factory = sqlite3.Row
        conn.create_function("to_number", 1, _to_number, deterministic=True)
        try:
            self._retry(lambda: self._configure(conn), "configure")
            self._retry(lambda: self._migrate(conn), "migrate")
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError("database is locked (could not switch to WAL)")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Room for the run and key/value indexes of a large workspace (allocated as used),
        # and sorts/intersections of filter results in memory rather than temp files.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        # MLflow's LIKE is case-sensitive and ILIKE is not; match that.
        conn.execute("PRAGMA case_sensitive_like = ON")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION:
            return
        from sqlite_utils import Database  # only imported when a migration runs

        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > LATEST_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer cellops (schema {version}, this one "
                    f"knows {LATEST_VERSION}). Upgrade cellops: pip install -U cellops."
                )
            db = Database(conn, recursive_triggers=False, execute_plugins=False)
            for number, migration in MIGRATIONS:
                if number > version:
                    migration(db)
                    conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        pid = os.getpid()
        if self._conn is None or self._pid != pid:
            with self.lock:
                if self._conn is None or self._pid != pid:
                    # After fork the parent's connection must not be used (or closed) here.
                    self._conn = self._connect()
                    self._pid = pid
        return self._conn

    def open(self) -> None:
        """Connect now: create the database file and run its migrations."""
        self.conn  # noqa: B018 - the property connects

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- running statements ------------------------------------------------
    def _retry(self, fn: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + self.retry_budget_s
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"Workspace database error in {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"The workspace database {self.path} stayed locked by another process "
                        f"for {self.retry_budget_s:.0f}s. Find the process holding it "
                        "(e.g. `fuser` on the file) or retry; nothing was written."
                    ) from exc
                self.retries[what] += 1
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"Workspace database error in {self.path}: {exc}") from exc

    def write(self, fn: Callable[[sqlite3.Connection], T], *, once: bool = False,
              settled: Callable[[sqlite3.Connection], T] | None = None) -> T:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction, retrying when busy.

        ``fn`` may run more than once, so it must only touch the database. Inside this
        thread's :meth:`transaction`, ``fn`` runs once, as part of it. ``once`` and
        ``settled`` are PostgreSQL's (a COMMIT whose reply was lost on the network); here a
        retry only follows a write that did not commit.
        """
        if self._tx_thread == threading.get_ident():
            try:
                return fn(self.conn)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"Workspace database error in {self.path}: {exc}") from exc

        def attempt() -> T:
            with self.lock:
                conn = self.conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

        return self._retry(attempt, "write")

    @contextmanager
    def bound(self, serialize: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction held for the ``with`` block (see the module
        docstring); committed when the block ends, rolled back when it raises. Waiting for
        the write lock is retried like :meth:`write`; the block itself runs once.
        (``serialize`` matters on PostgreSQL only: SQLite's write lock serialises always.)"""
        if self._tx_thread == threading.get_ident():
            yield self.conn  # already inside one: it joins
            return
        with self.lock:
            conn = self.conn

            def begin() -> None:
                conn.execute("BEGIN IMMEDIATE")

            self._retry(begin, "write")
            self._tx_thread = threading.get_ident()
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._tx_thread = None

    def write_for_run(self, run_ids: str | Iterable[str],
                      fn: Callable[[sqlite3.Connection], T], *, once: bool = False,
                      settled: Callable[[sqlite3.Connection], T] | None = None) -> T:
        """:meth:`write` of rows that belong to runs: when a run was deleted meanwhile (by
        another process, say), a :class:`RunNotFoundError` that says so, not a constraint error."""
        try:
            return self.write(fn)
        except StoreError as exc:
            if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise
            gone = deleted_runs_error(self, run_ids)
            if gone is None:
                raise
            raise gone from None

    def query(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement and return all rows."""

        def attempt() -> list[sqlite3.Row]:
            with self.lock:
                return self.conn.execute(sql, params).fetchall()

        return self._retry(attempt, "read")

    def query_tuples(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[tuple]:
        """:meth:`query` returning plain tuples: for reads of thousands of rows, where
        building ``sqlite3.Row`` objects costs more than the query."""

        def attempt() -> list[tuple]:
            with self.lock:
                cur = self.conn.cursor()
                cur.row_factory = None
                return cur.execute(sql, params).fetchall()

        return self._retry(attempt, "read")

    def query_tuples_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
        """:meth:`query_tuples` of several independent reads (one after another here; a
        server database runs them side by side)."""
        return [self.query_tuples(sql, args) for sql, args in statements]

    def side_by_side(self, reads: Sequence[Callable[[], T]]) -> list[T]:
        """The results of independent reads (one after another here; a server database
        runs them side by side)."""
        return [read() for read in reads]

    def query_dicts(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[dict]:
        """:meth:`query` returning one dict per row (column name -> value)."""

        def attempt() -> list[dict]:
            with self.lock:
                cur = self.conn.cursor()
                cur.row_factory = None
                rows = cur.execute(sql, params).fetchall()
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in rows]

        return self._retry(attempt, "read")

    def query_one(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def integrity_check(self) -> list[str]:
        """Return SQLite's ``PRAGMA integrity_check`` lines (``['ok']`` when healthy)."""
        return [r[0] for r in self.query("PRAGMA integrity_check")]
