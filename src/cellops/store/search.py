"""Compile a parsed filter (:mod:`cellops.tracking.filter`) into bound SQL and run it.

Every value travels as a bound parameter; keys too. Conditions on metrics,
params, tags and datasets become ``r.id IN (subquery)`` so SQLite can use the
``(key, value)`` indexes of ``latest_metrics``, ``params`` and ``tags``.
"""

from __future__ import annotations

from typing import Any, Sequence

from .filter import Comparison, Field, Logical, OrderKey
from .core import Connection

_ATTRIBUTE_SQL = {
    "run_id": "r.id", "run_name": "r.name", "status": "r.status", "start_time": "r.start_time",
    "end_time": "r.end_time", "user": "r.user", "kind": "r.kind",
    "parent_run_id": "r.parent_id", "host": "r.host", "git_commit": "r.git_commit",
    "git_branch": "r.git_branch", "notebook_path": "r.notebook_path",
    "source_name": "r.source_name", "experiment": "e.name",
}
_KV_TABLE = {"metrics": "latest_metrics", "params": "params", "tags": "tags"}


def _predicate(column: str, c: Comparison, args: list[Any], numeric_text: bool) -> str:
    """SQL for ``column <op> value``; ``numeric_text`` compares a text column as a number."""
    op = c.op
    if op in ("LIKE", "NOT LIKE"):
        args.append(c.value)
        return f"{column} {op} ?"
    if op in ("ILIKE", "NOT ILIKE"):
        args.append(c.value)
        neg = "NOT " if op.startswith("NOT") else ""
        return f"lower({column}) {neg}LIKE lower(?)"
    if op in ("IN", "NOT IN"):
        values = list(c.value)  # type: ignore[arg-type]
        col = column
        if numeric_text and all(isinstance(v, float) for v in values):
            col = f"to_number({column})"
        elif numeric_text:
            values = [_as_text(v) for v in values]
        args.extend(values)
        return f"{col} {op} ({', '.join('?' * len(values))})"
    value = c.value
    if numeric_text and isinstance(value, float):
        column = f"to_number({column})"
    args.append(value)
    return f"{column} {op} ?"


def _as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def compile_filter(node: Comparison | Logical, args: list[Any]) -> str:
    if isinstance(node, Logical):
        joiner = f" {node.op} "
        return "(" + joiner.join(compile_filter(item, args) for item in node.items) + ")"
    f = node.field
    if f.entity == "attributes":
        column = _ATTRIBUTE_SQL[f.key]
        if node.op in ("IS NULL", "IS NOT NULL"):
            return f"{column} {node.op}"
        return _predicate(column, node, args, numeric_text=False)
    if f.entity == "datasets":
        sub = ("SELECT rd.run_id FROM run_datasets rd JOIN datasets d ON d.id = rd.dataset_id"
               " WHERE ")
        if node.op in ("IS NULL", "IS NOT NULL"):
            neg = "NOT " if node.op == "IS NULL" else ""
            return f"r.id {neg}IN (SELECT run_id FROM run_datasets)"
        column = "rd.role" if f.key == "role" else f"d.{f.key}"
        return f"r.id IN ({sub}{_predicate(column, node, args, numeric_text=False)})"
    table = _KV_TABLE[f.entity]
    args.append(f.key)
    if node.op in ("IS NULL", "IS NOT NULL"):
        neg = "NOT " if node.op == "IS NULL" else ""
        return f"r.id {neg}IN (SELECT run_id FROM {table} WHERE key = ?)"
    pred = _predicate("value", node, args, numeric_text=f.entity != "metrics")
    return f"r.id IN (SELECT run_id FROM {table} WHERE key = ? AND {pred})"


def _order_sql(keys: Sequence[OrderKey], joins: list[str], join_args: list[Any]) -> str:
    parts = []
    for i, k in enumerate(keys):
        f: Field = k.field
        direction = "DESC" if k.descending else "ASC"
        if f.entity == "attributes":
            expr = _ATTRIBUTE_SQL[f.key]
        elif f.entity in _KV_TABLE:
            alias = f"o{i}"
            joins.append(
                f"LEFT JOIN {_KV_TABLE[f.entity]} {alias} ON {alias}.run_id = r.id AND {alias}.key = ?"
            )
            join_args.append(f.key)
            expr = f"{alias}.value"
            if f.entity != "metrics":
                # Numbers logged as params sort as numbers, other text as text.
                expr = f"COALESCE(to_number({alias}.value), {alias}.value)"
        else:
            from ..errors import FilterSyntaxError

            raise FilterSyntaxError(f"Cannot order by {f}; order by metrics., params., tags. "
                                    "or an attribute.")
        # Runs without the key go last whatever the direction.
        parts.append(f"({expr} IS NULL), {expr} {direction}")
    parts.append("r.start_time DESC, r.rowid DESC")  # insertion order breaks ties
    return ", ".join(parts)


class SearchQueries(Connection):
    @staticmethod
    def _where(experiment_ids: Sequence[int] | None, node: Comparison | Logical | None,
               kinds: Sequence[str] | None, args: list[Any]) -> str:
        where = []
        if experiment_ids is not None:
            where.append(f"r.experiment_id IN ({', '.join('?' * len(experiment_ids))})")
            args.extend(experiment_ids)
        if kinds:
            where.append(f"r.kind IN ({', '.join('?' * len(kinds))})")
            args.extend(kinds)
        if node is not None:
            where.append(compile_filter(node, args))
        return " WHERE " + " AND ".join(where) if where else ""

    def search_run_rows(
        self,
        experiment_ids: Sequence[int] | None,
        node: Comparison | Logical | None,
        order: Sequence[OrderKey],
        limit: int | None,
        kinds: Sequence[str] | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        args: list[Any] = []
        where = self._where(experiment_ids, node, kinds, args)
        joins: list[str] = []
        join_args: list[Any] = []
        order_sql = _order_sql(order, joins, join_args)
        sql = (
            "SELECT r.*, e.name AS experiment FROM runs r"
            " JOIN experiments e ON e.id = r.experiment_id "
            + " ".join(joins) + where + f" ORDER BY {order_sql}"
        )
        all_args = join_args + args
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            all_args += [-1 if limit is None else int(limit), int(offset)]
        return [dict(r) for r in self.query(sql, all_args)]

    def count_run_rows(self, experiment_ids: Sequence[int] | None,
                       node: Comparison | Logical | None, kinds: Sequence[str] | None = None) -> int:
        args: list[Any] = []
        where = self._where(experiment_ids, node, kinds, args)
        sql = "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id" + where
        return int(self.query(sql, args)[0][0])
