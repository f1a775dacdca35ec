"""The workspace database on PostgreSQL: the same interface as :class:`.core.Connection`.

A team's workspace keeps its metadata in PostgreSQL (``store_url`` in the workspace
config, or ``CELLOPS_STORE_URL``). The per-concept tables of :mod:`cellops.store` run on
it unchanged: they call :meth:`PgConnection.write`, :meth:`~PgConnection.query` and
friends with SQLite's spelling, which :func:`.dialect.translate` rewrites once per
statement. Connections come from a psycopg 3 pool (one per process, reopened after a
fork), in autocommit for reads; a write is one transaction on one pooled connection,
its statements sent together (:class:`_Batch`): a round trip per write, not per statement.

How the guarantees of the SQLite store carry over:

- **Units of work** (``store.transaction()``) take a transaction-level advisory lock
  first, so they run one at a time, as ``BEGIN IMMEDIATE`` makes them on SQLite: a rule
  checked inside one cannot be overtaken by another process's unit of work. Plain writes
  (metric batches, prediction logs) do not take it and run side by side.
- **The audit chain**: an append takes the audit lock (another advisory lock) before it
  reads the last entry, so concurrent appends from several hosts stay one chain.
- **Lost connections**: a write whose connection fails (the server restarted, the
  network dropped) is retried on a fresh connection, with backoff, for
  ``retry_budget_s``; after that a :class:`~cellops.errors.StoreBusyError` says which
  server is unreachable. Serialization failures and deadlocks are retried the same way.
- Errors: a constraint violation surfaces as ``sqlite3.IntegrityError`` (the store's
  code catches DB-API errors by the names sqlite3 gives them), anything else as
  :class:`~cellops.errors.StoreError` naming the server.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ParamConflictError, StoreBusyError, StoreError, WorkspaceError
from .core import deleted_runs_error
from .dialect import (MIGRATION_LOCK, PARAM_CLASH, POSTGRESQL, UNIT_OF_WORK_LOCK, PgSchema,
                      translate)
from .schema import LATEST_VERSION, MIGRATIONS

T = TypeVar("T")
_READER_PREFIX = "cellops-pg-read"  # the threads of side_by_side



def _one_line(exc: BaseException) -> str:
    """An error's message on one line (psycopg's span several), or its type's name."""
    return " ".join(str(exc).split()) or type(exc).__name__


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        netloc = f"{parts.username}:***@{host}" if parts.username else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _quiet_pool_logging() -> None:
    """The pool logs each failed connection attempt as a warning; cellops reports the
    failure itself (once, with what to do), so without a logging setup they stay quiet."""
    import logging

    logger = logging.getLogger("psycopg.pool")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def _import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise WorkspaceError(
            "This workspace's store is PostgreSQL, which needs psycopg 3 and its pool: "
            'pip install "cellops[postgresql]".') from None
    return psycopg


class _Row(tuple):
    """A result row: by position and by column name, like ``sqlite3.Row``."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


_row_classes: dict[tuple[str, ...], type] = {}


def _columns(names: tuple[str, ...]) -> tuple[tuple[str, ...], int | None]:
    """A result's column names, leaving out the hidden ``rowid`` (see :mod:`.dialect`)
    when other columns come with it; and the position left out."""
    if "rowid" in names and len(names) > 1:
        drop = names.index("rowid")
        return names[:drop] + names[drop + 1:], drop
    return names, None


def _names(cursor: Any) -> tuple[str, ...]:
    """The column names of the cursor's current result; () for a command (no rows)."""
    res = cursor.pgresult
    if res is None or not res.nfields:
        return ()
    return tuple(d.name for d in cursor.description)


def _row_factory(names: tuple[str, ...]) -> Callable[[Any], Any]:
    names, drop = _columns(names)
    cls = _row_classes.get(names)
    if cls is None:
        cls = _row_classes[names] = type("Row", (_Row,), {"__slots__": (),
                                                          "_index": {n: i for i, n in enumerate(names)}})
    if drop is None:
        return cls
    return lambda values: cls(values[:drop] + values[drop + 1:])


def _tuple_factory(names: tuple[str, ...]) -> Callable[[Any], Any]:
    _, drop = _columns(names)
    return tuple if drop is None else (lambda values: tuple(values[:drop] + values[drop + 1:]))


def _dict_factory(names: tuple[str, ...]) -> Callable[[Any], Any]:
    names, drop = _columns(names)
    if drop is None:
        return lambda values: dict(zip(names, values))
    return lambda values: dict(zip(names, values[:drop] + values[drop + 1:]))


def _rows(rows: list[tuple], names: tuple[str, ...],
          factory: Callable[[tuple[str, ...]], Callable[[Any], Any]]) -> list:
    if factory is _tuple_factory and "rowid" not in names:
        return rows
    make = factory(names)
    return [make(r) for r in rows]


def _configure_adapters(adapters: Any) -> None:
    """Python values as SQLite gives them back: booleans are stored as integers, and
    ``numeric`` results (``sum`` of integers) come back as int or float, not Decimal."""
    import struct

    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format

    int8 = adapters.types["int8"].oid

    class BoolText(Dumper):
        oid = int8

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    class BoolBinary(Dumper):
        oid = int8
        format = Format.BINARY

        def dump(self, obj: Any) -> bytes:
            return struct.pack(">q", 1 if obj else 0)

    class NumericLoader(Loader):
        def load(self, data: Any) -> Any:
            value = Decimal(bytes(data).decode())
            return int(value) if value == value.to_integral_value() else float(value)

    adapters.register_dumper(bool, BoolText)
    adapters.register_dumper(bool, BoolBinary)
    adapters.register_loader("numeric", NumericLoader)
    try:
        import numpy as np
        from psycopg.types.numeric import (FloatBinaryDumper, FloatDumper, Int8BinaryDumper,
                                           Int8Dumper)

        # Text dumpers too: small statements are bound on the client (see _Batch).
        for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32):
            adapters.register_dumper(t, Int8Dumper)
            adapters.register_dumper(t, Int8BinaryDumper)
        for t in (np.float16, np.float32, np.float64):
            adapters.register_dumper(t, FloatDumper)
            adapters.register_dumper(t, FloatBinaryDumper)
        adapters.register_dumper(np.bool_, BoolText)
        adapters.register_dumper(np.bool_, BoolBinary)
    except ImportError:  # pragma: no cover - numpy comes with pandas
        pass


def _fetch_all(cur: Any) -> tuple[list, tuple[str, ...]]:
    """The rows and column names of the cursor's current result; ([], ()) for a command."""
    names = _names(cur)
    return (cur.fetchall() if names else []), names


class _Result:
    """A statement's result in a batched transaction (:class:`_Batch`): its rows and
    ``rowcount``, there once the batch it went in was sent; reading them sends it."""

    __slots__ = ("_batch", "_rows", "_names", "_count")

    def __init__(self, batch: _Batch | None) -> None:
        self._batch = batch
        self._rows: list[tuple] = []
        self._names: tuple[str, ...] = ()
        self._count = -1

    def _take(self, cur: Any) -> None:
        """Add the cursor's current result (its rows, or a command's count)."""
        rows, names = _fetch_all(cur)
        self._add(rows, names, cur.rowcount)
        self._batch = None

    def _add(self, rows: list[tuple], names: tuple[str, ...], rowcount: int) -> None:
        if names:
            self._rows.extend(rows)
            self._names = names
        self._count = rowcount if self._count < 0 else self._count + max(rowcount, 0)

    def _wait(self) -> None:
        if self._batch is not None:
            self._batch.send()
            self._batch = None

    @property
    def rowcount(self) -> int:
        self._wait()
        return self._count

    def fetch(self, factory: Callable[[tuple[str, ...]], Callable[[Any], Any]]) -> list:
        self._wait()
        return _rows(self._rows, self._names, factory)

    def fetchall(self) -> list:
        return self.fetch(_row_factory)

    def fetchone(self) -> Any:
        rows = self.fetch(_row_factory)
        return rows[0] if rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


# A statement with more values than this is sent on its own, its values bound by the
# server (binary, prepared when repeated); smaller ones travel together as one text.
_BATCH_MAX_VALUES = 100


class _Prepared:
    """The statements prepared on one connection (SQL-level ``PREPARE``: a batch is one
    text, so psycopg's own prepared statements do not apply). A statement a write sends
    on every call (a run's metrics, its params check) is planned once per connection.
    Kept by connection in a weak mapping, so it holds no reference to the connection."""

    __slots__ = ("names", "count")
    LIMIT = 64  # statements per connection

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.count = 0


_PLACEHOLDER = re.compile(r"%%|%s")


def _numbered(sql: str) -> tuple[str, int]:
    """``sql`` with psycopg's ``%s`` placeholders as ``$1, $2, ...`` (for ``PREPARE``)."""
    n = 0

    def number(m: re.Match[str]) -> str:
        nonlocal n
        if m.group() == "%%":
            return "%"
        n += 1
        return f"${n}"

    return _PLACEHOLDER.sub(number, sql), n


class _Batch:
    """The statements of one transaction not yet sent to the server.

    A write costs round trips to the server, not statements: ``execute`` only queues a
    statement, and the queue goes as one multi-statement text (values quoted by
    psycopg's client-side binding) when a result is read or the transaction commits. So
    ``BEGIN``, the inserts of a new run and ``COMMIT`` are one round trip. A statement
    with many values (a flush of thousands of metric points) is sent by itself, its
    values bound by the server. A statement marked ``prepare`` is prepared on the
    connection the first time and executed by name after that.
    """

    def __init__(self, conn: Any, owner: PgConnection) -> None:
        from psycopg import ClientCursor

        self.conn, self.owner = conn, owner
        self.known = owner._prepared_on(conn)
        self.client = ClientCursor(conn)
        self.sql: list[str] = []
        self.results: list[_Result] = []
        self.preparing: dict[str, str] = {}

    def add(self, sql: str, values: tuple, result: _Result, prepare: bool = False) -> None:
        if len(values) > _BATCH_MAX_VALUES:
            self.send()
            cur = self.conn.cursor()
            with self.owner._errors():
                cur.execute(sql, values)
            result._take(cur)
            return
        if prepare and values:
            sql = self._by_name(sql, len(values))
        # Bound one statement at a time: psycopg caches the parsing of each short text.
        with self.owner._errors():
            self.sql.append(self.client.mogrify(sql, values) if values or "%" in sql else sql)
        self.results.append(result)

    def _by_name(self, sql: str, n_values: int) -> str:
        """``EXECUTE name(%s, ...)`` for ``sql``, queuing its ``PREPARE`` the first time;
        ``sql`` itself when the connection holds as many as it may."""
        known = self.known
        name = known.names.get(sql) or self.preparing.get(sql)
        if name is None:
            if known.count >= _Prepared.LIMIT:
                return sql
            known.count += 1  # a name never reused, even if this batch fails
            name = self.preparing[sql] = f"cellops_{known.count}"
            text, n = _numbered(sql)
            if n != n_values:
                raise ValueError(f"{n_values} values for {n} placeholders")
            self.sql.append(f"PREPARE {name} AS {text}")
            self.results.append(_Result(None))
        return f"EXECUTE {name}(" + ", ".join(["%s"] * n_values) + ")"

    def send(self) -> None:
        if not self.sql:
            return
        sql, results = "; ".join(self.sql), self.results
        self.sql, self.results = [], []
        preparing, self.preparing = self.preparing, {}
        cur = self.client
        with self.owner._errors():
            cur.execute(sql)
        # Prepared only once the text that prepares them ran (a failed batch may not have).
        self.known.names.update(preparing)
        for result in results:
            result._take(cur)
            cur.nextset()


class _Cursor:
    """What ``fn(conn)`` receives inside :meth:`PgConnection.write`: ``execute`` and
    ``executemany`` in SQLite's spelling. In a transaction the statements are batched
    (:class:`_Batch`); outside one (migrations) each is sent at once."""

    dialect = POSTGRESQL

    def __init__(self, conn: Any, owner: PgConnection, batch: _Batch | None = None) -> None:
        self._conn, self._owner, self._batch = conn, owner, batch

    def execute(self, sql: str, params: Iterable[Any] | None = ()) -> _Result:
        return self.execute_pg(translate(sql), params or ())

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> _Result:
        result = _Result(self._batch)
        rows = [tuple(r) for r in seq]
        if not rows:
            result._count = 0
            result._batch = None
        elif self._batch is not None and len(rows) * len(rows[0]) <= _BATCH_MAX_VALUES:
            text = translate(sql)
            for row in rows:
                self._batch.add(text, row, result)
        else:
            if self._batch is not None:
                self._batch.send()
            cur = self._conn.cursor()
            with self._owner._errors():
                cur.executemany(translate(sql), rows)
            result._add([], (), cur.rowcount)
            result._batch = None
        return result

    def execute_pg(self, sql: str, values: Iterable[Any] = (), *, prepare: bool = False
                   ) -> _Result:
        """:meth:`execute` of a statement in PostgreSQL's own spelling (``%s``; from
        :mod:`.dialect`), not translated. ``prepare``: a statement sent on every call of
        a hot write, whose placeholders' types the server can tell (planned once per
        connection)."""
        result = _Result(self._batch)
        values = tuple(values)
        if self._batch is not None:
            self._batch.add(sql, values, result, prepare)
            return result
        cur = self._conn.cursor()
        with self._owner._errors():
            cur.execute(sql, values)
        result._take(cur)
        return result

    def read(self, sql: str, params: Iterable[Any] | None,
             factory: Callable[[tuple[str, ...]], Callable[[Any], Any]]) -> list:
        """Rows of a read inside the transaction (it sees the transaction's writes)."""
        return self.execute(sql, params).fetch(factory)

    def advisory_lock(self, key: int | str) -> None:
        """Hold the advisory lock ``key`` (a number, or a text hashed by the server) until
        this transaction ends."""
        if isinstance(key, str):
            self._queue("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
        else:
            self._queue("SELECT pg_advisory_xact_lock(%s)", (key,))

    def _queue(self, sql: str, values: tuple) -> None:
        """A statement already in psycopg's spelling, its result not wanted."""
        if self._batch is not None:
            self._batch.add(sql, values, _Result(self._batch))
        else:
            with self._owner._errors():
                self._conn.execute(sql, values)


class _Pin:
    """``with store.lock:`` on PostgreSQL: this thread's statements use one pooled
    connection until the block ends (a temporary table lives on one connection)."""

    def __init__(self, owner: PgConnection) -> None:
        self.owner = owner

    def __enter__(self) -> Any:
        pool = self.owner._pool()  # first, as opening it (after a fork) renews _local
        local = self.owner._local
        if getattr(local, "depth", 0) == 0:
            local.ctx = pool.connection()
            local.conn = local.ctx.__enter__()
        local.depth = getattr(local, "depth", 0) + 1
        return self

    def __exit__(self, *exc: Any) -> None:
        local = self.owner._local
        local.depth -= 1
        if local.depth == 0:
            ctx, local.ctx, local.conn = local.ctx, None, None
            ctx.__exit__(*exc)


class PgConnection:
    """The workspace database on a PostgreSQL server (see the module docstring)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, retry_budget_s: float = 120.0, pool_size: int = 8,
                 connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.path = redact(url)  # what messages name
        self.retry_budget_s = retry_budget_s
        self.pool_size = pool_size
        self.connect_timeout_s = connect_timeout_s
        # Retries by kind; "settled": writes found committed by their receipt on a retry.
        self.retries: dict[str, int] = {"configure": 0, "migrate": 0, "write": 0, "read": 0,
                                        "settled": 0}
        self._lock = threading.RLock()
        self._pool_obj: Any = None
        self._pid: int | None = None
        self._local = threading.local()
        self._psycopg = _import_psycopg()
        self._prepared: Any = weakref.WeakKeyDictionary()
        self._readers: tuple[int, Any] | None = None  # (pid, thread pool) for query_tuples_many

    # -- the pool ----------------------------------------------------------------------------
    def _pool(self) -> Any:
        pid = os.getpid()
        if self._pool_obj is None or self._pid != pid:
            with self._lock:
                if self._pool_obj is None or self._pid != pid:
                    self._pool_obj = self._open_pool()
                    self._pid = pid
                    self._local = threading.local()
        return self._pool_obj

    def _open_pool(self) -> Any:
        from psycopg_pool import ConnectionPool

        _quiet_pool_logging()

        def configure(conn: Any) -> None:
            _configure_adapters(conn.adapters)

        # Waiting for a connection never outlasts the retry budget (a budget of 2 s means
        # an error after about 2 s, not after the connect timeout).
        wait = max(1.0, min(self.connect_timeout_s, self.retry_budget_s))
        pool = ConnectionPool(
            self.url, min_size=1, max_size=self.pool_size, open=False, configure=configure,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(self.connect_timeout_s)),
                    "application_name": "cellops"},
            timeout=wait, reconnect_timeout=max(60.0, self.retry_budget_s), name="cellops")
        try:
            pool.open(wait=True, timeout=wait)
        except Exception as exc:  # noqa: BLE001 - PoolTimeout says little: connect once to say why
            pool.close()
            raise StoreError(self._unreachable(exc)) from None
        try:
            self._retry(lambda: self._migrate(pool), "migrate")
        except BaseException:
            pool.close()
            raise
        return pool

    def _unreachable(self, exc: BaseException) -> str:
        why = str(exc).strip()
        try:
            self._psycopg.connect(self.url, connect_timeout=max(1, int(self.connect_timeout_s))).close()
        except Exception as direct:  # noqa: BLE001
            # libpq's message is a line per thing it says; each loses its final "." or "?".
            why = "; ".join(" ".join(line.split()).rstrip(".?")
                            for line in str(direct).splitlines() if line.strip())
        missing = re.search(r'database "([^"]+)" does not exist', why)
        if missing:
            info = self._psycopg.conninfo.conninfo_to_dict(self.url)
            where = " ".join(f"-{flag} {info[key]}" for flag, key in
                             (("h", "host"), ("p", "port"), ("U", "user")) if info.get(key))
            return (f"The workspace's PostgreSQL store {self.path} names a database the server "
                    f"does not have ({why}). Create it first (`createdb {where} "
                    f"{missing.group(1)}`, or CREATE DATABASE as a user who may); cellops makes "
                    "its tables, not the database.")
        return (f"Cannot reach the workspace's PostgreSQL store {self.path}: {why}. Check that the "
                "server is running and the URL (store_url in .cellops/config.json or "
                "config.toml, or CELLOPS_STORE_URL) is right; credentials come from the URL, "
                "PGPASSWORD or ~/.pgpass.")

    def _migrate(self, pool: Any) -> None:
        with pool.connection() as conn:
            have = conn.execute("SELECT to_regclass('cellops_schema') IS NOT NULL").fetchone()[0]
            if have and conn.execute("SELECT version FROM cellops_schema").fetchone()[0] \
                    == LATEST_VERSION:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS cellops_schema (version BIGINT NOT NULL)")
                row = conn.execute("SELECT version FROM cellops_schema").fetchone()
                if row is None:
                    conn.execute("INSERT INTO cellops_schema (version) VALUES (0)")
                    version = 0
                else:
                    version = row[0]
                if version > LATEST_VERSION:
                    raise StoreError(
                        f"{self.path} was written by a newer cellops (schema {version}, this one "
                        f"knows {LATEST_VERSION}). Upgrade cellops: pip install -U cellops.")
                schema = PgSchema(_Cursor(conn, self))
                for number, migration in MIGRATIONS:
                    if number > version:
                        migration(schema)  # type: ignore[arg-type]
                        conn.execute("UPDATE cellops_schema SET version = %s", (number,))

    def _prepared_on(self, conn: Any) -> _Prepared:
        """What is prepared on ``conn`` (a new connection, after a reconnect, has nothing)."""
        known = self._prepared.get(conn)
        if known is None:
            known = self._prepared[conn] = _Prepared()
        return known

    def open(self) -> None:
        """Connect now (and migrate the schema)."""
        self._pool()

    def close(self) -> None:
        with self._lock:
            if self._pool_obj is not None and self._pid == os.getpid():
                self._pool_obj.close()
            self._pool_obj = None
            if self._readers is not None and self._readers[0] == os.getpid():
                self._readers[1].shutdown(wait=False)
            self._readers = None

    # -- errors and retries ------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        errors = self._psycopg.errors
        try:
            yield
        except errors.IntegrityError as exc:
            raise sqlite3.IntegrityError(str(exc).strip()) from exc
        except self._psycopg.Error as exc:
            if getattr(exc, "sqlstate", None) == PARAM_CLASH:  # see dialect.pg_param_insert
                raise ParamConflictError(*json.loads(exc.diag.message_detail)) from None
            raise

    def _db_error(self, exc: BaseException) -> StoreError:
        """What a database error the store cannot retry says to the user."""
        return StoreError(f"Workspace database error in {self.path}: {str(exc).strip()}")

    def _retryable(self, exc: BaseException) -> bool:
        from psycopg_pool import PoolTimeout

        errors = self._psycopg.errors
        if isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected, PoolTimeout)):
            return True
        return self._lost(exc)

    def _lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the connection was lost (the server restarted or is
        unreachable): an OperationalError with no SQLSTATE from the server, or one of the
        "connection exception"/shutdown classes."""
        if isinstance(exc, self._psycopg.OperationalError):
            state = getattr(exc, "sqlstate", None) or ""
            return state == "" or state.startswith(("08", "57P"))
        return False

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + self.retry_budget_s
        delay = 0.05
        while True:
            try:
                return fn()
            except StoreError:
                raise
            except sqlite3.IntegrityError:
                raise
            except self._psycopg.errors.IntegrityError as exc:  # raised at COMMIT
                raise sqlite3.IntegrityError(str(exc).strip()) from exc
            except Exception as exc:  # noqa: BLE001 - psycopg's errors, and PoolTimeout
                if not self._retryable(exc):
                    if isinstance(exc, self._psycopg.Error):
                        raise self._db_error(exc) from exc
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"The workspace's PostgreSQL store {self.path} stayed unreachable for "
                        f"{self.retry_budget_s:.0f}s ({str(exc).strip() or type(exc).__name__}). "
                        "Check the server and the network, then retry; nothing of this write "
                        "was stored.") from exc
            self.retries[what] += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    # -- statements --------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self._pool().connection() as conn:
            yield conn

    @property
    def where(self) -> str:
        """What messages call this database: its URL, without a password."""
        return self.path

    @property
    def lock(self) -> _Pin:
        return _Pin(self)

    @contextmanager
    def _transaction(self, conn: Any, serialize: bool) -> Iterator[_Cursor]:
        """One transaction on ``conn``, its statements batched (:class:`_Batch`): a write
        whose results are not read costs one round trip, ``BEGIN`` to ``COMMIT``. A
        database error may surface where a result is next read or at the commit; it
        rolls the whole transaction back."""
        batch = _Batch(conn, self)
        cur = _Cursor(conn, self, batch)
        try:
            cur._queue("BEGIN", ())
            if serialize:
                cur.advisory_lock(UNIT_OF_WORK_LOCK)
            yield cur
            cur._queue("COMMIT", ())
            batch.send()
        except BaseException:
            self._abort(conn)
            raise

    def _abort(self, conn: Any) -> None:
        """Roll back what was sent; a broken connection is left to the pool, which
        discards it."""
        from psycopg.pq import TransactionStatus

        try:
            if conn.info.transaction_status in (TransactionStatus.INTRANS,
                                                TransactionStatus.INERROR):
                conn.execute("ROLLBACK")
        except self._psycopg.Error:
            pass

    def write(self, fn: Callable[[Any], T], *, once: bool = False,
              settled: Callable[[Any], T] | None = None) -> T:
        """Run ``fn(conn)`` in one transaction, retried on a fresh connection when the
        connection is lost (``fn`` may run more than once: it must only touch the database).
        Inside this thread's :meth:`bound` block, ``fn`` joins that transaction.

        Statements are batched (:meth:`_transaction`): a database error may surface
        where ``fn`` next reads a result, or when the write commits.

        ``once``: for rows that must not land twice (metric batches, prediction logs). A
        connection can break after the server committed but before its reply arrived;
        retrying would then write the rows again. So the transaction also stores a receipt
        (a fresh token, migration 17), and a retry looks it up first: found, the write had
        committed, and ``settled(conn)`` runs instead (the part of ``fn`` that is safe to
        repeat, for its result), or nothing (the result is None)."""
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            try:
                return fn(tx)
            except self._psycopg.errors.IntegrityError as exc:
                raise sqlite3.IntegrityError(str(exc).strip()) from exc
            except self._psycopg.Error as exc:
                raise self._in_unit_error(exc) from exc

        if not once:
            def attempt() -> T:
                with self._connection() as conn, self._transaction(conn, False) as cur:
                    return fn(cur)

            return self._retry(attempt, "write")

        token = ""
        sent = False

        def attempt_once() -> T:
            nonlocal sent, token
            with self._connection() as conn:
                if sent and self._committed(conn, token):
                    self.retries["settled"] += 1
                    if settled is None:
                        return None  # type: ignore[return-value]
                    with self._transaction(conn, False) as cur:
                        return settled(cur)
                with self._transaction(conn, False) as cur:
                    result = fn(cur)
                    token = self._queue_receipt(cur)
                    sent = True  # from here on, the COMMIT may have reached the server
                return result

        return self._retry(attempt_once, "write")

    def _queue_receipt(self, cur: _Cursor) -> str:
        """Add a new receipt (and, every few minutes, the pruning of old ones) to the
        transaction of ``cur``; return its token."""
        token = self._receipt_token()
        cur.execute_pg("INSERT INTO cellops_receipts (token) VALUES (%s)", (token,))
        prune = self._receipts_to_prune()
        if prune:
            cur.execute_pg("DELETE FROM cellops_receipts WHERE token < %s", (prune,))
        return token

    def _in_unit_error(self, exc: BaseException) -> StoreError:
        """What a failed statement inside a unit of work (before its COMMIT) raises: a
        lost connection says that nothing of the change was stored (the block is not
        redone: it may have read and decided things); anything else is a database error."""
        if not self._lost(exc):
            return self._db_error(exc)
        return StoreBusyError(
            f"The connection to the workspace's PostgreSQL store {self.path} broke before this "
            f"change was committed ({_one_line(exc)}); nothing of it was stored. Do it again.")

    def _settle_unit(self, token: str, exc: BaseException) -> None:
        """After a unit of work's connection broke at its COMMIT: return if it committed
        (its receipt is there), else say that nothing of it was stored. A unit of work
        is not redone: its block may have read and decided things."""
        def look() -> bool:
            with self._pool().connection() as conn:  # not the pinned, broken one
                return self._committed(conn, token)

        try:
            committed = self._retry(look, "read")
        except StoreBusyError:
            raise StoreError(
                f"The connection to the workspace's PostgreSQL store {self.path} broke while "
                f"this change was being committed ({_one_line(exc)}), and the server stayed "
                "unreachable, so it may or may not be stored. Look (cellops runs list, "
                "cellops models list, ...) before doing it again.") from exc
        if committed:
            self.retries["settled"] += 1
            return
        raise self._in_unit_error(exc) from exc

    @staticmethod
    def _committed(conn: Any, token: str) -> bool:
        """Whether the write that carried the receipt ``token`` committed. The receipt is
        claimed, not just looked for: if the write has not committed, it never will (its own
        insert of the token now fails), even if its COMMIT is still on its way to the
        server; if it is committing right now, the claim waits for its outcome."""
        claimed = conn.execute("INSERT INTO cellops_receipts (token) VALUES (%s)"
                               " ON CONFLICT (token) DO NOTHING", (token,)).rowcount
        return claimed == 0

    _RECEIPTS_KEPT_S = 3600.0  # far longer than a retry budget: a retry finds its receipt
    _next_prune = 0.0

    def _receipt_token(self) -> str:
        """A receipt's token: the time in milliseconds (13 digits), then random hex."""
        return f"{int(time.time() * 1000):013d}{os.urandom(8).hex()}"

    def _receipts_to_prune(self) -> str | None:
        """Every few minutes, the token below which receipts are old enough to delete (a
        range of the primary key: receipts are kept at least an hour, and always longer
        than this process's retry budget)."""
        now = time.time()
        if now < self._next_prune:
            return None
        self._next_prune = now + 300.0
        kept = max(self._RECEIPTS_KEPT_S, 2 * self.retry_budget_s)
        return f"{int((now - kept) * 1000):013d}"

    @contextmanager
    def bound(self, serialize: bool = True) -> Iterator[Any]:
        """One transaction held for the ``with`` block, serialised with every other unit of
        work by an advisory lock (see the module docstring) unless ``serialize`` is False
        (a block that only writes rows together and checks no rule)."""
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            yield tx
            return
        with self.lock:
            conn = self._local.conn

            # BEGIN and the lock are sent, not waited for: the server takes the lock
            # before it runs the block's first statement, so a rule the block reads
            # is read under it.
            ctx = self._transaction(conn, serialize)
            self._local.tx = cur = ctx.__enter__()
            try:
                yield cur
            except BaseException as exc:
                self._local.tx = None
                ctx.__exit__(type(exc), exc, exc.__traceback__)
                raise
            else:
                self._local.tx = None
                # A receipt goes with the COMMIT: if the connection breaks before its reply
                # arrives, a fresh connection tells whether the unit of work committed.
                token = self._queue_receipt(cur)
                try:
                    ctx.__exit__(None, None, None)  # COMMIT
                except sqlite3.IntegrityError:
                    raise
                except self._psycopg.errors.IntegrityError as exc:
                    raise sqlite3.IntegrityError(str(exc).strip()) from exc
                except self._psycopg.Error as exc:
                    if not self._lost(exc):
                        raise self._db_error(exc) from exc
                    self._settle_unit(token, exc)

    def write_for_run(self, run_ids: str | Iterable[str], fn: Callable[[Any], T], *,
                      once: bool = False, settled: Callable[[Any], T] | None = None) -> T:
        """:meth:`write` of rows that belong to runs: a run deleted meanwhile gives a
        :class:`RunNotFoundError`, not a constraint error."""
        try:
            return self.write(fn, once=once, settled=settled)
        except sqlite3.IntegrityError:
            gone = deleted_runs_error(self, run_ids)
            if gone is None:
                raise
            raise gone from None

    def _read(self, sql: str, params: Any, factory: Callable[[Any], Any]) -> list:
        def run(conn: Any) -> list:
            cur = conn.cursor()
            with self._errors():
                cur.execute(translate(sql), tuple(params or ()))
            return _rows(*_fetch_all(cur), factory)

        tx = getattr(self._local, "tx", None)
        if tx is not None:  # reads inside a unit of work see its writes (run once)
            try:
                return tx.read(sql, params, factory)
            except self._psycopg.Error as exc:
                raise self._in_unit_error(exc) from exc

        def attempt() -> list:
            with self._connection() as conn:
                return run(conn)

        return self._retry(attempt, "read")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list:
        """Run a read-only statement and return all rows (by position and by name)."""
        return self._read(sql, params, _row_factory)

    def query_tuples(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._read(sql, params, _tuple_factory)

    def query_tuples_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
        """:meth:`query_tuples` of several independent reads, run side by side on pooled
        connections (a search's params, metrics and tags: the server works on them at
        once). Inside a unit of work or a pinned block they run in turn on its connection."""
        return self.side_by_side([lambda sql=sql, args=args: self.query_tuples(sql, args)
                                  for sql, args in statements])

    def side_by_side(self, reads: Sequence[Callable[[], T]]) -> list[T]:
        """The results of independent reads (functions that only read through this
        connection), run side by side on pooled connections: the first in the calling
        thread, the others in reader threads. Inside a unit of work or a pinned block they
        run in turn on its connection."""
        if len(reads) < 2 or getattr(self._local, "tx", None) is not None \
                or getattr(self._local, "conn", None) is not None \
                or threading.current_thread().name.startswith(_READER_PREFIX):
            return [read() for read in reads]
        self._pool()  # opened (and renewed after a fork) before the threads use it
        pid = os.getpid()
        with self._lock:
            if self._readers is None or self._readers[0] != pid:
                from concurrent.futures import ThreadPoolExecutor

                self._readers = (pid, ThreadPoolExecutor(
                    max_workers=max(1, min(3, self.pool_size - 1)),
                    thread_name_prefix=_READER_PREFIX))
            readers = self._readers[1]
        futures = [readers.submit(read) for read in reads[1:]]
        try:
            first = reads[0]()
        except BaseException:
            from concurrent.futures import wait

            wait(futures)  # no read is left running on its own
            raise
        return [first, *(f.result() for f in futures)]

    def query_dicts(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        return self._read(sql, params, _dict_factory)

    def query_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def integrity_check(self) -> list[str]:
        """``['ok']`` when the server answers and the schema is this cellops's."""
        version = self.query("SELECT version FROM cellops_schema")[0][0]
        if version != LATEST_VERSION:
            return [f"schema version {version}, expected {LATEST_VERSION}"]
        return ["ok"]
