"""Copy a whole workspace database into another one, on either engine.

``copy_store(source, target)`` copies every table, row for row, keeping ids (run ids,
experiment and request numbers, audit sequence numbers and hashes) and the order rows
were written in, so a copied audit chain verifies and "newest first" means the same.
The target must be empty (:func:`is_empty`): a copy never merges into, or overwrites,
another workspace's data.

What differs between the engines is handled here, not by the caller: values SQLite
computes itself (``sort_value``) are written on PostgreSQL; experiment run counts are
rebuilt by the target's own triggers as runs arrive; PostgreSQL's id sequences are moved
past the copied ids.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .dialect import BYTES_COLUMNS, POSTGRESQL, ROWID_TABLES, SQLITE, as_bytes, sort_key

# Every table, parents before children (the order the migrations create them in).
TABLES = (
    "experiments", "environments", "runs", "params", "tags", "metrics", "latest_metrics",
    "artifacts", "datasets", "run_datasets", "cells", "step_cache", "pipeline_steps",
    "registered_models", "model_versions", "model_tags", "model_aliases", "alias_protections",
    "promotion_requests", "approvals", "audit_log", "predictions", "prediction_labels",
    "serving_endpoints", "monitors", "monitor_results", "alerts", "alert_deliveries",
    "feature_views", "online_features", "feature_materializations", "workspace_roles",
)
# The key that pages through each table (SQLite: every table has a rowid).
_PG_ORDER = {"audit_log": "seq", "experiments": "id", "datasets": "id",
             "promotion_requests": "id", "predictions": "id", "monitor_results": "id",
             "alerts": "id", "alert_deliveries": "id"}
_CHUNK = 5_000
# Columns the database computes (SQLite) or the copy recomputes.
_SKIP = {"rowid", "sort_value"}


def columns(store: Any, table: str) -> list[str]:
    """The stored columns of ``table`` (not the computed ones)."""
    if store.dialect == SQLITE:
        names = [r[1] for r in store.query(f"PRAGMA table_info({table})")]
    else:
        names = [r[0] for r in store.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " AND table_schema = current_schema() ORDER BY ordinal_position", (table,))]
    return [n for n in names if n not in _SKIP]


def is_empty(store: Any) -> bool:
    """Whether ``store`` holds no row in any table."""
    return all(not store.query(f"SELECT 1 FROM {t} LIMIT 1") for t in TABLES)


def _rows(store: Any, table: str, cols: list[str]) -> Iterator[list[tuple]]:
    """``table``'s rows in the order they were written, a chunk at a time."""
    picked = ", ".join(f'"{c}"' for c in cols)
    if store.dialect == SQLITE or table in ROWID_TABLES:
        last = -(2**63)
        while True:
            chunk = store.query_tuples(
                f"SELECT rowid AS row_key, {picked} FROM {table} WHERE rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (last, _CHUNK))
            if not chunk:
                return
            last = chunk[-1][0]
            yield [r[1:] for r in chunk]
        return
    order = _PG_ORDER.get(table) or ", ".join(f'"{c}"' for c in cols)
    offset = 0
    while True:
        chunk = store.query_tuples(f"SELECT {picked} FROM {table} ORDER BY {order}"
                                   " LIMIT ? OFFSET ?", (_CHUNK, offset))
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


def copy_store(source: Any, target: Any,
               progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; return rows copied per table."""
    counts: dict[str, int] = {}
    to_pg = target.dialect == POSTGRESQL
    for table in TABLES:
        cols = columns(source, table)
        have = set(columns(target, table))
        cols = [c for c in cols if c in have]
        out_cols = list(cols)
        sortable = to_pg and table in ("params", "tags")
        if sortable:
            out_cols.append("sort_value")
        quoted = ", ".join(f'"{c}"' for c in out_cols)
        sql = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(out_cols))})"
        fix = _fixer(table, cols, to_pg, sortable)
        n = 0
        for chunk in _rows(source, table, cols):
            rows = [fix(r) for r in chunk] if fix else chunk
            target.write(lambda conn, rows=rows, sql=sql: conn.executemany(sql, rows))
            n += len(rows)
            if progress:
                progress(table, n)
        counts[table] = n
    if to_pg:
        from .dialect import pg_identity_fix

        target.write(lambda conn: [conn.execute(s) for s in pg_identity_fix(_PG_ORDER)])
        target.query("ANALYZE")  # statistics for the planner, as after any bulk load
    return counts


def _fixer(table: str, cols: list[str], to_pg: bool, sortable: bool
           ) -> Callable[[tuple], tuple] | None:
    fixes: list[Callable[[list], None]] = []
    if table == "experiments":  # the target's triggers count runs as they are copied
        at_count, at_last = cols.index("run_count"), cols.index("last_run_time")

        def reset(row: list) -> None:
            row[at_count], row[at_last] = 0, None
        fixes.append(reset)
    if to_pg:
        for i, col in enumerate(cols):
            if (table, col) in BYTES_COLUMNS:
                fixes.append(lambda row, i=i: row.__setitem__(i, as_bytes(row[i])))
    if sortable:
        at_value = cols.index("value")
        fixes.append(lambda row: row.append(sort_key(row[at_value])))
    if not fixes:
        return None

    def fix(row: tuple) -> tuple:
        out = list(row)
        for f in fixes:
            f(out)
        return tuple(out)
    return fix
