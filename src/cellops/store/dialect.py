"""Where SQLite and PostgreSQL differ: the one module that knows both dialects.

The store's SQL is written once, in the SQL both engines accept where they agree
(``ON CONFLICT ... DO UPDATE``, ``RETURNING``, ``CAST(x AS BIGINT)``, window functions).
For the rest the store writes SQLite's spelling and :func:`translate` rewrites a
statement for PostgreSQL, once per distinct statement (cached):

==========================================  ============================================
SQLite                                       PostgreSQL
==========================================  ============================================
``?`` placeholders                           ``%s`` (and a literal ``%`` doubled)
``INSERT OR IGNORE INTO ...``                ``INSERT INTO ... ON CONFLICT DO NOTHING``
``json_each(?)`` (a bound JSON list)         ``json_array_elements_text(%s::json)``
``json_each(col)`` / ``json_extract(j.value,  ``json_array_elements(col::json)`` /
'$.k')``                                     ``(j.value ->> 'k')``
``INDEXED BY idx``, ``+col`` (planner hints)  dropped: PostgreSQL plans from statistics
``CROSS JOIN t ON ...`` (join order hint)     ``JOIN t ON ...``
``x IS ?`` / ``x IS NOT ?`` (null-safe)        ``IS [NOT] DISTINCT FROM %s``
``temp.t``, ``WITHOUT ROWID``                 ``pg_temp.t``, dropped
``user`` (a column of ``runs``)               ``"user"`` (reserved in PostgreSQL)
``rowid`` (insertion order)                  a ``rowid`` identity column on the tables
                                             whose insertion order the store reads
                                             (``runs``, ``metrics``, ``step_cache``);
                                             rows never show it
==========================================  ============================================

What a rewrite cannot express lives here as functions: DDL for the schema's migrations
(:class:`PgSchema`, the part of sqlite-utils' API the migrations use), the triggers that
keep experiment run counts, and :func:`sort_key`, the sortable form of a param or tag
value that SQLite computes itself (a NUMERIC-affinity generated column) and PostgreSQL
stores.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# PostgreSQL advisory lock keys (pg_advisory_xact_lock): units of work, audit appends and
# migrations each take theirs, so that they run one at a time across processes and hosts.
UNIT_OF_WORK_LOCK = 0x63656C6C  # "cell"
AUDIT_LOCK = 0x61756474  # "audt"
MIGRATION_LOCK = 0x6D696772  # "migr"

# Tables whose insertion order the store reads (ties broken by it, "newest" by it).
ROWID_TABLES = frozenset({"runs", "metrics", "step_cache"})
# Columns that hold bytes or text (SQLite keeps either in one column): bytes here, text
# written as UTF-8 (see :func:`as_bytes`). The prediction log's inputs: packed numbers or JSON.
BYTES_COLUMNS = frozenset({("predictions", "inputs")})


def as_bytes(value: Any) -> Any:
    """A value bound for a :data:`BYTES_COLUMNS` column on PostgreSQL."""
    return value.encode("utf-8") if isinstance(value, str) else value

_LITERAL = re.compile(r"('(?:[^']|'')*')")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"json_each\(\?\)"), "json_array_elements_text(?::json)"),
    (re.compile(r"json_each\(([\w.]+)\)"), r"json_array_elements(\1::json)"),
    (re.compile(r"\s+INDEXED BY \w+"), ""),
    (re.compile(r"(?<=[\s(,])\+(?=[a-z_]\w*\.)"), ""),
    (re.compile(r"\bCROSS JOIN\b"), "JOIN"),
    (re.compile(r"\s+WITHOUT ROWID\b"), ""),
    (re.compile(r"\btemp\.(?=\w)"), "pg_temp."),
    (re.compile(r"\bIS \?"), "IS NOT DISTINCT FROM ?"),
    (re.compile(r"\bIS NOT \?"), "IS DISTINCT FROM ?"),
    (re.compile(r'(?<![.\w"])user(?![\w"(])'), '"user"'),  # a reserved word in PostgreSQL
]
_JSON_EXTRACT = re.compile(r"json_extract\(([\w.]+), '\$\.([^']*)'\)")
_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` (SQLite's spelling) as PostgreSQL runs it through psycopg."""
    sql = _JSON_EXTRACT.sub(lambda m: f"({m.group(1)} ->> '{m.group(2)}')", sql)
    ignore = bool(_IGNORE.match(sql))
    if ignore:
        sql = _IGNORE.sub("INSERT INTO", sql, count=1)
    parts = _LITERAL.split(sql)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a quoted literal: only psycopg's own escape
            out.append(part.replace("%", "%%"))
            continue
        part = part.replace("%", "%%")
        for pattern, repl in _REWRITES:
            part = pattern.sub(repl, part)
        out.append(part.replace("?", "%s"))
    sql = "".join(out)
    if ignore:
        sql = sql.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return sql


def is_number_text(value: str) -> bool:
    """Whether SQLite's NUMERIC affinity would turn ``value`` into a number."""
    return bool(_NUMBER.match(value))


def sort_key(value: Any) -> str | None:
    """The text whose byte order is the order SQLite gives a NUMERIC-affinity value:
    numbers first, by value, then text, by its UTF-8 bytes (column collation "C")."""
    if value is None:
        return None
    text = str(value)
    if _NUMBER.match(text):
        bits = struct.unpack(">Q", struct.pack(">d", float(text)))[0]
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
        return f"n{bits:016x}"
    return "t" + text


# -- statements only PostgreSQL can run --------------------------------------------------------
# Each saves a round trip to the server where SQLite, in-process, has none to save.

# The most metric rows whose steps the server numbers (pg_metric_insert); a larger flush
# reads the highest steps first and inserts plain rows, which costs less per point.
PG_METRIC_ROWS = 16


def pg_metric_insert(rows: Sequence[tuple]) -> tuple[str, list[Any]]:
    """One statement that stores metric points — (run_id, key, step or None, value,
    timestamp) — and moves ``latest_metrics`` forward, numbering the points logged
    without a step on the server: one past the highest stored step of their key, in
    order. For batches where no key has points both with and without a step (the
    caller checks; :func:`cellops.store.metrics.fill_steps` does the rest). The caller
    holds the run's step lock."""
    values: list[Any] = []
    for i, row in enumerate(rows):
        values.extend(row)
        values.append(i)
    first = "(%s::text, %s::text, %s::bigint, %s::float8, %s::bigint, %s::bigint)"
    rest = ", (%s, %s, %s, %s, %s, %s)" * (len(rows) - 1)
    return (
        "WITH v (run_id, key, step, value, timestamp, ord) AS (VALUES " + first + rest + "),"
        " s AS (SELECT v.run_id, v.key, v.value, v.timestamp, v.ord,"
        "  CASE WHEN v.step IS NOT NULL THEN v.step ELSE coalesce((SELECT l.step FROM"
        "   latest_metrics l WHERE l.run_id = v.run_id AND l.key = v.key), -1)"
        "   + row_number() OVER (PARTITION BY v.run_id, v.key ORDER BY v.ord) END AS step"
        "  FROM v),"
        " m AS (INSERT INTO metrics (run_id, key, step, value, timestamp)"
        "  SELECT run_id, key, step, value, timestamp FROM s ORDER BY ord)"
        " INSERT INTO latest_metrics (run_id, key, step, value, timestamp)"
        " SELECT DISTINCT ON (run_id, key) run_id, key, step, value, timestamp FROM s"
        " ORDER BY run_id, key, step DESC, timestamp DESC, ord DESC"
        " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
        "  step = excluded.step, timestamp = excluded.timestamp"
        " WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step"
        "  AND excluded.timestamp >= latest_metrics.timestamp)", values)


# The SQLSTATE cellops_param_clash() raises: a param logged again with another value.
PARAM_CLASH = "CL001"


def pg_param_insert(run_id: str, items: Sequence[tuple[str, str]]) -> list[tuple[str, list[Any]]]:
    """Statements that insert params and, in the same transaction, fail with
    :data:`PARAM_CLASH` (detail: JSON [run_id, key, stored, given], the first such key in
    ``items``' order) when a key is stored with another value; so a caller need not read
    a result before it commits. Read after the insert, the check sees rows other
    processes committed meanwhile."""
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(items))
    given = ", ".join(["(%s::text, %s::text, %s::bigint)"] + ["(%s, %s, %s)"] * (len(items) - 1))
    insert = [v for k, val in items for v in (run_id, k, val, sort_key(val))]
    check = [v for i, (k, val) in enumerate(items) for v in (k, val, i)]
    return [
        ("INSERT INTO params (run_id, key, value, sort_value) VALUES " + rows
         + " ON CONFLICT (run_id, key) DO NOTHING", insert),
        ("SELECT cellops_param_clash(%s, c.key, c.stored, c.given) FROM (SELECT n.key,"
         " p.value AS stored, n.value AS given FROM (VALUES " + given + ") AS n (key, value, ord)"
         " JOIN params p ON p.run_id = %s AND p.key = n.key WHERE p.value <> n.value"
         " ORDER BY n.ord LIMIT 1) c", [run_id, *check, run_id]),
    ]


# -- schema ----------------------------------------------------------------------------------

_TYPES = {int: "BIGINT", str: "TEXT", float: "DOUBLE PRECISION", bytes: "BYTEA", bool: "BIGINT"}
_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)


class PgTable:
    """``db[name]`` of :class:`PgSchema`: create a table or an index."""

    def __init__(self, schema: PgSchema, name: str) -> None:
        self.schema, self.name = schema, name

    def create(self, columns: Mapping[str, type], *, pk: str | Sequence[str] | None = None,
               not_null: Iterable[str] = (), foreign_keys: Iterable[tuple[str, str, str]] = (),
               defaults: Mapping[str, Any] | None = None) -> None:
        not_null, defaults = set(not_null), dict(defaults or {})
        pks = [pk] if isinstance(pk, str) else list(pk or [])
        lines = []
        for col, typ in columns.items():
            if (self.name, col) in BYTES_COLUMNS:
                typ = bytes
            sql = f'"{col}" {_TYPES[typ]}'
            if pks == [col] and col == "id" and typ is int:
                sql += " GENERATED BY DEFAULT AS IDENTITY"
            if col in not_null:
                sql += " NOT NULL"
            if col in defaults:
                sql += f" DEFAULT {_literal(defaults[col])}"
            lines.append(sql)
        if self.name in ROWID_TABLES:
            lines.append("rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE")
        if pks:
            lines.append(f"PRIMARY KEY ({', '.join(pks)})")
        for col, table, other in foreign_keys:
            lines.append(f"FOREIGN KEY ({col}) REFERENCES {table} ({other})")
        self.schema.execute(f"CREATE TABLE {self.name} (\n  " + ",\n  ".join(lines) + "\n)")

    def create_index(self, columns: Sequence[str], *, unique: bool = False,
                     if_not_exists: bool = False) -> None:
        name = f"idx_{self.name}_{'_'.join(columns)}"
        self.schema.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {'IF NOT EXISTS ' if if_not_exists else ''}"
            f"{name} ON {self.name} ({', '.join(columns)})")


def _literal(value: Any) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class PgSchema:
    """The part of sqlite-utils' ``Database`` the migrations use (``db[name].create``,
    ``.create_index``, ``db.execute``), writing PostgreSQL DDL on one connection, inside
    the transaction that applies the migration."""

    dialect = POSTGRESQL

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.lstrip().upper().startswith(("CREATE", "ALTER")):
            sql = _INTEGER.sub("BIGINT", sql)
        return self.conn.execute(sql, params)


# The functions and triggers PostgreSQL needs for what SQLite does itself.
PG_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION to_number(t text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN t ~ '^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$'
              THEN CAST(t AS double precision) END
$$;
"""

# Raises PARAM_CLASH for pg_param_insert's check (a function: plain SQL cannot raise).
PG_PARAM_CLASH = """
CREATE OR REPLACE FUNCTION cellops_param_clash(run text, k text, stored text, given text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'param % of run % is stored as %, not %', k, run, stored, given
    USING ERRCODE = '""" + PARAM_CLASH + """', DETAIL = json_build_array(run, k, stored, given)::text;
END $$;
"""

PG_RUN_COUNT_TRIGGERS = """
CREATE OR REPLACE FUNCTION cellops_runs_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE experiments SET run_count = run_count - 1,
      last_run_time = (SELECT max(start_time) FROM runs WHERE experiment_id = OLD.experiment_id)
      WHERE id = OLD.experiment_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE experiments SET run_count = run_count + 1,
      last_run_time = CASE WHEN TG_OP = 'INSERT'
        THEN greatest(coalesce(last_run_time, NEW.start_time), NEW.start_time)
        ELSE (SELECT max(start_time) FROM runs WHERE experiment_id = NEW.experiment_id) END
      WHERE id = NEW.experiment_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_counted_on_insert AFTER INSERT ON runs
  FOR EACH ROW EXECUTE FUNCTION cellops_runs_counted();
CREATE TRIGGER runs_counted_on_delete AFTER DELETE ON runs
  FOR EACH ROW EXECUTE FUNCTION cellops_runs_counted();
CREATE TRIGGER runs_counted_on_move AFTER UPDATE OF experiment_id, start_time ON runs
  FOR EACH ROW EXECUTE FUNCTION cellops_runs_counted();
"""


def pg_identity_fix(tables_with_ids: Mapping[str, str]) -> list[str]:
    """Statements that move each identity column's sequence past the largest id stored
    (after rows were copied in with their ids)."""
    return [f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), coalesce(max(id), 0) + 1, false)"
            f" FROM {t}" for t, key in tables_with_ids.items() if key == "id"]
