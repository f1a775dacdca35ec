"""Compile a parsed filter (:mod:`cellops.store.filter`) into bound SQL and run it.

Every value travels as a bound parameter; keys too. Conditions on metrics,
params, tags and datasets become ``r.id IN (subquery)`` served by the
``(key, value, run_id)`` indexes of ``latest_metrics``, ``params`` and ``tags``
(the conditions of one AND combined in one subquery). :meth:`RunSearch.page` serves the
sidebar's paged tables: the filter evaluated once into a temporary id set, then
an ordered index walk or a sort of the set, whichever the count says is cheaper.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from .core import Connection
from .filter import Comparison, Field, Logical, OrderKey
from .metrics import restore_nan
from .runs import RUN_COLUMNS
from .values import INT64_MAX, ids_param, key_values_sql

_ATTRIBUTE_SQL = {
    "run_id": "r.id", "run_name": "r.name", "status": "r.status", "start_time": "r.start_time",
    "end_time": "r.end_time", "user": "r.user", "kind": "r.kind",
    "parent_run_id": "r.parent_id", "host": "r.host", "git_commit": "r.git_commit",
    "git_branch": "r.git_branch", "notebook_path": "r.notebook_path",
    "source_name": "r.source_name", "experiment": "e.name",
}
# Never NULL: ordered without a nulls-last term, so SQLite can walk their indexes.
_NOT_NULL_ATTRIBUTES = {"run_id", "status", "start_time", "kind", "experiment"}
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


FINGERPRINT_CHARS = 64  # a sha256 in hex


def dataset_predicate(column: str, c: Comparison, args: list[Any]) -> str:
    """SQL for a ``datasets.KEY`` comparison on ``column``. A fingerprint compared with
    ``=`` / ``!=`` to a shorter text (the 12-character digest people see, or any prefix)
    compares that prefix."""
    if (c.field.key == "fingerprint" and c.op in ("=", "!=") and isinstance(c.value, str)
            and len(c.value) < FINGERPRINT_CHARS):
        args.extend([len(c.value), c.value])
        return f"substr({column}, 1, ?) {c.op} ?"
    return _predicate(column, c, args, numeric_text=False)


def _as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _kv_condition(node: Comparison, args: list[Any]) -> str:
    """The test of a metric/param/tag comparison on one row of its table: its key, and
    its value unless the comparison is ``IS NOT NULL``."""
    args.append(node.field.key)
    if node.op == "IS NOT NULL":
        return "key = ?"
    return "key = ? AND " + _predicate("value", node, args,
                                       numeric_text=node.field.entity != "metrics")


def _kv_members(node: Comparison, args: list[Any], alias: str = "") -> str:
    """``SELECT run_id ...`` of the runs a metric/param/tag comparison holds for; served by
    the table's (key, value, run_id) index alone."""
    source = _KV_TABLE[node.field.entity] + (f" {alias}" if alias else "")
    return f"SELECT run_id FROM {source} WHERE {_kv_condition(node, args)}"


def _all_members(nodes: Sequence[Comparison], args: list[Any],
                 sizes: Mapping[Comparison, int] | None = None) -> str:
    """``SELECT run_id ...`` of the runs every one of ``nodes`` holds for, reading no run row.

    One condition's index range drives — the smallest by ``sizes`` when known, else a
    range or pattern condition — and each other condition is one seek per candidate: an
    equality into its (key, value, run_id) index, anything else into its (run_id, key)
    key. Measured in SQLite, that beats INTERSECT and probing id lists built per query.
    """
    if sizes:
        ordered = sorted(nodes, key=lambda n: sizes.get(n, 1 << 62))
    else:
        ordered = sorted(nodes, key=_is_exact)  # stable: a non-equality condition first
    first, *others = ordered
    sql = _kv_members(first, args, alias="d")
    for other in others:
        table = _KV_TABLE[other.field.entity]
        if _is_exact(other):
            args += [other.field.key, other.value]
            sql += (f" AND EXISTS (SELECT 1 FROM {table} INDEXED BY idx_{table}_key_value_run_id"
                    " WHERE key = ? AND value = ? AND run_id = d.run_id)")
        else:
            sql += f" AND {_has_row(other, args, 'd.run_id')}"
    return sql


def _has_row(node: Comparison, args: list[Any], run_id: str) -> str:
    """``EXISTS`` a row of the run ``run_id`` (a column) that the comparison holds for."""
    table = _KV_TABLE[node.field.entity]
    return (f"EXISTS (SELECT 1 FROM {table} WHERE run_id = {run_id}"
            f" AND {_kv_condition(node, args)})")


def _is_exact(node: Comparison) -> bool:
    """An equality whose value is compared as stored (so the index can seek on it)."""
    return node.op == "=" and (isinstance(node.value, str) if node.field.entity != "metrics"
                               else isinstance(node.value, float))


def _is_member_test(node: Comparison | Logical) -> bool:
    return (isinstance(node, Comparison) and node.field.entity in _KV_TABLE
            and node.op != "IS NULL")


def _each_member(nodes: Sequence[Comparison], args: list[Any]) -> str:
    """One correlated ``EXISTS`` per metric/param/tag condition of an AND, for a database
    that plans from statistics (PostgreSQL). A run has one row per key in each table, so
    the planner makes them plain joins and picks which drives; measured at 100,000 runs,
    1 to 2.5 ms (5-10%) faster than :func:`_all_members`' nested subquery, whose result it
    must first de-duplicate."""
    return " AND ".join(_has_row(node, args, "r.id") for node in nodes)


def compile_filter(node: Comparison | Logical, args: list[Any],
                   sizes: Mapping[Comparison, int] | None = None, *,
                   planned: bool = False, per_run: bool = False) -> str:
    """SQL for a filter over ``runs r``.

    Metric, param and tag conditions test membership in an index-only subquery; the
    conditions of one AND share a single subquery (see :func:`_all_members`; ``sizes``,
    how many runs each condition holds for, picks the one that drives) or, ``planned``
    (PostgreSQL), are one ``EXISTS`` each (:func:`_each_member`). ``per_run``: every such
    condition is one ``EXISTS`` seek by the run's id, for a query that walks runs in
    order (SQLite would otherwise build the whole subquery's result first).
    """
    if isinstance(node, Logical):
        if node.op == "AND":
            members = [item for item in node.items if _is_member_test(item)]
            if len(members) > 1:
                parts = [_each_member(members, args) if planned or per_run
                         else f"r.id IN ({_all_members(members, args, sizes)})"]
                parts += [compile_filter(item, args, sizes, planned=planned, per_run=per_run)
                          for item in node.items if not _is_member_test(item)]
                return "(" + " AND ".join(parts) + ")"
        joiner = f" {node.op} "
        return "(" + joiner.join(compile_filter(item, args, sizes, planned=planned,
                                                per_run=per_run)
                                 for item in node.items) + ")"
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
        return f"r.id IN ({sub}{dataset_predicate(column, node, args)})"
    if f.entity == "models":
        if node.op in ("IS NULL", "IS NOT NULL"):
            neg = "NOT " if node.op == "IS NULL" else ""
            return f"r.id {neg}IN (SELECT run_id FROM model_versions WHERE run_id IS NOT NULL)"
        if f.key == "alias":
            return ("r.id IN (SELECT mv.run_id FROM model_versions mv JOIN model_aliases a ON "
                    "a.name = mv.name AND a.version = mv.version WHERE "
                    f"{_predicate('a.alias', node, args, numeric_text=False)})")
        return (f"r.id IN (SELECT run_id FROM model_versions WHERE "
                f"{_predicate(f.key, node, args, numeric_text=False)})")
    if node.op == "IS NULL":
        args.append(f.key)
        return f"r.id NOT IN (SELECT run_id FROM {_KV_TABLE[f.entity]} WHERE key = ?)"
    if per_run:
        return _has_row(node, args, "r.id")
    return f"r.id IN ({_kv_members(node, args)})"


def _has_members(node: Comparison | Logical | None) -> bool:
    if isinstance(node, Logical):
        return node.op == "AND" and any(_has_members(item) for item in node.items)
    return node is not None and _is_member_test(node)


def _attributes_only(node: Comparison | Logical) -> bool:
    """Whether a filter tests nothing but the run rows' own columns (``attributes.``)."""
    if isinstance(node, Logical):
        return all(_attributes_only(item) for item in node.items)
    return node.field.entity == "attributes"


def _conjuncts(node: Comparison | Logical) -> tuple:
    """The conditions a filter ANDs together at its top: an AND's items, else the filter."""
    return node.items if isinstance(node, Logical) and node.op == "AND" else (node,)


def _only_members(node: Comparison | Logical | None) -> list[Comparison] | None:
    """The metric/param/tag conditions when the filter is nothing else (one, or an AND of
    them), so that counting needs no run rows; else None."""
    if node is None:
        return None
    items = _conjuncts(node)
    return list(items) if all(_is_member_test(i) for i in items) else None


def _member_set(node: Comparison | Logical, args: list[Any],
                sizes: Mapping[Comparison, int] | None = None) -> str | None:
    """``SELECT run_id ...`` of the runs a filter made only of metric/param/tag conditions
    (under AND and OR) holds for, reading no run row — how PostgreSQL counts a filtered
    page; None when the filter tests anything else."""
    if isinstance(node, Comparison):
        return _kv_members(node, args) if _is_member_test(node) else None
    if node.op == "AND":
        if not all(isinstance(i, Comparison) and _is_member_test(i) for i in node.items):
            return None
        return _all_members(list(node.items), args, sizes)  # type: ignore[arg-type]
    parts = []
    for item in node.items:
        part = _member_set(item, args, sizes)
        if part is None:
            return None
        parts.append(part)
    return " UNION ".join(parts)


def _order_sql(keys: Sequence[OrderKey], joins: list[str], join_args: list[Any],
               reverse: bool = False) -> str:
    """ORDER BY terms for ``keys``, ties broken newest first (``r.start_time``, then
    ``r.rowid``: a total order). ``reverse``: every term's direction flipped, which is the
    exact reverse order (a direction's flip also moves NULLs to the other end, on both
    engines, and the terms give no NULLS FIRST/LAST of their own)."""
    terms: list[tuple[str, bool]] = []  # (expression, descending)
    for i, k in enumerate(keys):
        f: Field = k.field
        if f.entity == "attributes":
            expr = _ATTRIBUTE_SQL[f.key]
        elif f.entity in _KV_TABLE:
            alias = f"o{i}"
            joins.append(
                f"LEFT JOIN {_KV_TABLE[f.entity]} {alias} ON {alias}.run_id = r.id AND {alias}.key = ?"
            )
            join_args.append(f.key)
            # Numbers logged as params or tags sort as numbers (before text), through
            # their indexed NUMERIC-affinity column (migration 12).
            expr = f"{alias}.{_sort_column(f.entity)}"
        else:
            from ..errors import FilterSyntaxError

            raise FilterSyntaxError(f"Cannot order by {f}; order by metrics., params., tags. "
                                    "or an attribute.")
        if not (f.entity == "attributes" and f.key in _NOT_NULL_ATTRIBUTES):
            # Runs without the value go last whatever the direction.
            terms.append((f"({expr} IS NULL)", False))
        terms.append((expr, k.descending))
    terms += [("r.start_time", True), ("r.rowid", True)]  # insertion order breaks ties
    return ", ".join(f"{expr} {'DESC' if descending != reverse else 'ASC'}"
                     for expr, descending in terms)


def _sort_column(entity: str) -> str:
    """The column a metric, param or tag sorts by: a metric's value is a number already."""
    return "value" if entity == "metrics" else "sort_value"


# A page is read by walking runs in the order's index and keeping the matching ones
# when, by the number of matching runs, the page should turn up within this many runs;
# else the matching runs are sorted.
_WALK_BUDGET = 10_000
# On PostgreSQL, a filter whose metric, param and tag conditions hold for at most this many
# runs has its page read from their ids (see RunSearch._page_planned).
_PLANNED_SET = 5_000
# Runs sharing the value a page ends in are sorted when there are fewer than about
# sqrt(factor * page end * runs) of them, else found by walking runs newest first
# (see RunSearch._page_through_ties).
_GROUP_SORT_FACTOR = 1.0


class RunSearch:
    """Searches over runs (``store.search``): matching rows in order, counts and pages."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def values(self, run_ids: Iterable[str], kinds: Sequence[str] = ("params", "metrics", "tags")
               ) -> dict[str, list[tuple[str, str, Any]]]:
        """(run_id, key, value) of the given runs' params, latest metrics (NaN restored)
        and tags, by kind: the reads a results table needs, run side by side where the
        database can (PostgreSQL)."""
        ids = ids_param(run_ids)
        found = self.db.query_tuples_many([(key_values_sql(_KV_TABLE[k]), (ids,))
                                           for k in kinds])
        out = dict(zip(kinds, found))
        if "metrics" in out:
            out["metrics"] = restore_nan(out["metrics"])
        return out

    def _member_sizes(self, node: Comparison | Logical | None) -> dict[Comparison, int]:
        """How many runs each metric/param/tag condition of a multi-condition AND holds
        for, counted from its index alone (a few ms at 100,000 runs)."""
        sizes: dict[Comparison, int] = {}
        if not isinstance(node, Logical) or self.db.dialect != "sqlite":
            return sizes  # PostgreSQL picks the driving condition from its statistics
        members = [i for i in node.items if _is_member_test(i)] if node.op == "AND" else []
        if len(members) > 1:
            for m in members:
                args: list[Any] = []
                sizes[m] = self._size(_kv_members(m, args), args)
        for item in node.items:
            sizes.update(self._member_sizes(item))
        return sizes

    def _where(self, experiment_ids: Sequence[int] | None, node: Comparison | Logical | None,
               kinds: Sequence[str] | None, args: list[Any], *, members_in: bool = False,
               per_run: bool = False) -> str:
        """`` WHERE ...`` for a scope and a filter over ``runs r`` (empty for neither).
        ``members_in``: the runs that the filter's top-level metric, param and tag
        conditions hold for are already known, as the bound JSON list that ``args`` holds
        (:meth:`_member_ids`); only its other conditions are compiled. ``per_run``: see
        :func:`compile_filter`."""
        where = []
        if members_in:
            where.append("r.id IN (SELECT value FROM json_each(?))")
            rest = [i for i in _conjuncts(node) if not _is_member_test(i)]
            node = (None if not rest else rest[0] if len(rest) == 1
                    else Logical("AND", tuple(rest)))
        # When a metric/param/tag subquery can drive the query, keep SQLite from walking
        # the experiment or kind index instead (it has no statistics telling it that
        # those hold half the workspace): "+" makes them plain per-row tests.
        plain = "+" if _has_members(node) else ""
        if experiment_ids is not None:
            where.append(f"{plain}r.experiment_id IN ({', '.join('?' * len(experiment_ids))})")
            args.extend(experiment_ids)
        if kinds:
            where.append(f"{plain}r.kind IN ({', '.join('?' * len(kinds))})")
            args.extend(kinds)
        if node is not None:
            sizes = None if per_run else self._member_sizes(node)
            where.append(compile_filter(node, args, sizes, planned=self.db.dialect != "sqlite",
                                        per_run=per_run))
        return " WHERE " + " AND ".join(where) if where else ""

    def rows(
        self,
        experiment_ids: Sequence[int] | None,
        node: Comparison | Logical | None,
        order: Sequence[OrderKey],
        limit: int | None,
        kinds: Sequence[str] | None = None,
        offset: int = 0,
        columns: Sequence[str] | None = None,
        reverse: bool = False,
    ) -> list[dict[str, Any]]:
        """Run rows (with ``experiment``) that match, in ``order``, paged by limit/offset;
        ``columns`` of ``runs`` only, when given (a search reads what its table shows).
        ``reverse``: the page ``offset`` runs from the end of the order, returned in order."""
        args: list[Any] = []
        where = self._where(experiment_ids, node, kinds, args)
        return self._select_rows("FROM runs r", where, args, order, limit, offset,
                                 columns=columns, reverse=reverse)

    def count(self, experiment_ids: Sequence[int] | None,
                       node: Comparison | Logical | None, kinds: Sequence[str] | None = None) -> int:
        args: list[Any] = []
        where = self._where(experiment_ids, node, kinds, args)
        sql = "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id" + where
        return int(self.db.query(sql, args)[0][0])

    def page(
        self,
        experiment_ids: Sequence[int] | None,
        node: Comparison | Logical | None,
        order: Sequence[OrderKey],
        limit: int,
        kinds: Sequence[str] | None = None,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching runs and how many match — for tables over large workspaces.

        Without a filter the count comes from the experiments' run counts (or the kind
        index) and the page from an ordered index walk. With one, the filter is evaluated
        once into a temporary id set; the count is its size, and the page is either an
        index walk in page order keeping the runs in the set (when, by the count, the page
        turns up within ``_WALK_BUDGET`` runs) or the set's runs sorted. Count and page see
        the same runs.
        """
        if self.db.dialect != "sqlite" and node is not None:
            return self._page_planned(experiment_ids, node, order, limit, kinds, offset)
        if node is None:
            if kinds:
                total = self.count(experiment_ids, None, kinds)
            else:  # the experiments' run counts, kept by triggers (migration 6)
                ids = list(experiment_ids) if experiment_ids is not None else None
                total = int(self.db.query(
                    "SELECT coalesce(sum(run_count), 0) FROM experiments"
                    + ("" if ids is None else f" WHERE id IN ({', '.join('?' * len(ids))})"),
                    ids or [])[0][0])
            if total == 0:
                return [], 0
            if self._walk(total, limit, offset) and order and order[0].field.entity in _KV_TABLE:
                return self._walked_page(experiment_ids, None, order, limit, kinds,
                                         offset), total
            return self._unfiltered_page(experiment_ids, order, limit, kinds, offset,
                                         total), total
        total = self._quick_count(experiment_ids, node, kinds)
        if total is not None:
            # Counted without an id set: when the page turns up soon in page order, the
            # runs are walked there, each tested; an id set of most of the workspace
            # costs more than both (104,000 runs: a filter on the status took 81 ms to fill
            # the set, one on a metric that half the runs pass 29 ms).
            if total == 0 or offset >= total:
                return [], total
            if self._walk(total, limit, offset):
                return self._walked_page(experiment_ids, node, order, limit, kinds,
                                         offset), total
        with self.db.lock:  # the id set is this connection's: keep other threads off it
            self.db.query("CREATE TEMP TABLE IF NOT EXISTS page_match (id TEXT PRIMARY KEY)"
                       " WITHOUT ROWID")
            self.db.query("DELETE FROM temp.page_match")
            try:
                args = []
                members = _only_members(node)
                if members is not None and experiment_ids is None and not kinds:
                    # From the key/value indexes alone; no run row is read.
                    source = _all_members(members, args, self._member_sizes(node))
                else:
                    where = self._where(experiment_ids, node, kinds, args)
                    source = ("SELECT r.id FROM runs r"
                              + (" JOIN experiments e ON e.id = r.experiment_id"
                                 if "e.name" in where else "") + where)
                self.db.query("INSERT OR IGNORE INTO temp.page_match " + source, args)
                total = int(self.db.query("SELECT count(*) FROM temp.page_match")[0][0])
                if total == 0:
                    return [], 0
                in_set = "+r.id IN (SELECT id FROM temp.page_match)"
                if not self._walk(total, limit, offset):
                    rows = self._select_rows(
                        "FROM temp.page_match m CROSS JOIN runs r ON r.id = m.id", "", [],
                        order, limit, offset)
                elif order and order[0].field.entity in _KV_TABLE:
                    rows = self._rows_by_value(
                        order, limit, offset, "o.run_id IN (SELECT id FROM temp.page_match)",
                        in_set, [])
                else:
                    rows = self._select_rows("FROM runs r", " WHERE " + in_set, [],
                                             order, limit, offset)
                return rows, total
            finally:
                self.db.query("DELETE FROM temp.page_match")

    def _unfiltered_page(self, experiment_ids: Sequence[int] | None, order: Sequence[OrderKey],
                         limit: int, kinds: Sequence[str] | None, offset: int,
                         total: int) -> list[dict[str, Any]]:
        """A page of all the runs in scope, ``total`` of them. A page in the back half is
        read from the other end, in the reverse order with the offset counted from the
        end, so the last page costs what the first does instead of skipping every run
        before it."""
        if offset >= total:
            return []
        if 2 * offset + limit <= total:
            return self.rows(experiment_ids, None, order, limit, kinds, offset)
        n = min(limit, total - offset)
        return self.rows(experiment_ids, None, order, n, kinds, total - offset - n,
                         reverse=True)

    def _page_planned(self, experiment_ids: Sequence[int] | None, node: Comparison | Logical,
                      order: Sequence[OrderKey], limit: int, kinds: Sequence[str] | None,
                      offset: int) -> tuple[list[dict[str, Any]], int]:
        """A filtered page on a database that plans from statistics (PostgreSQL).

        A filter whose metric, param and tag conditions (one, or those of a top-level AND)
        hold for at most ``_PLANNED_SET`` runs: those runs' ids are read from the indexes
        alone, and one query reads the page of them (with the scope and the filter's
        other conditions) sorted, counting them in a window. A filter that matches more
        runs is counted (from the indexes alone where it is only such conditions) while,
        side by side on a second connection, its page is read by a query with no count in
        it, which the planner serves by walking the runs in the page's order (a metric,
        param or tag order walks its index: :meth:`_rows_by_value`).

        Measured at 100,000 runs: a filter matching a third of them took 190-300 ms as one
        query with a window count (the window makes the planner read and sort every match)
        and about 10 ms this way; the 3,300-run metric and param filter took 106-116 ms on
        tables not yet vacuumed (after a bulk load), where the planner walked every run,
        and 21 ms this way.
        """
        ids = self._member_ids(node)
        if ids == []:
            return [], 0  # no run passes the metric, param and tag conditions
        if ids is not None:
            args: list[Any] = [ids_param(ids)]
            where = self._where(experiment_ids, node, kinds, args, members_in=True)
            counted: list[int] = []
            rows = self._select_rows("FROM runs r", where, args, order, limit, offset,
                                     counted=counted)
            if counted:
                return rows, counted[0]
            return rows, self.count(experiment_ids, node, kinds)  # past the last page

        def count() -> int:
            args: list[Any] = []
            members = (_member_set(node, args) if experiment_ids is None and not kinds
                       else None)  # counted from the indexes alone
            if members is None:
                return self.count(experiment_ids, node, kinds)
            return self._size(members, args)

        def page() -> list[dict[str, Any]]:
            return self._walked_page(experiment_ids, node, order, limit, kinds, offset)

        found, total = self.db.side_by_side([page, count])
        return (found if offset < int(total) else []), int(total)

    def _quick_count(self, experiment_ids: Sequence[int] | None, node: Comparison | Logical,
                     kinds: Sequence[str] | None) -> int | None:
        """How many runs match, when that is cheap without an id set (SQLite): a filter on
        run attributes alone (a count of run rows, often from an index), or a single
        metric, param or tag condition over the whole workspace (from its index alone);
        else None."""
        if _attributes_only(node):
            return self.count(experiment_ids, node, kinds)
        if not (isinstance(node, Comparison) and _is_member_test(node)) or kinds:
            return None
        args: list[Any] = []
        sql = _kv_members(node, args, alias="d")
        if experiment_ids is not None:  # one seek each into the runs' (id, experiment) index
            sql += (" AND EXISTS (SELECT 1 FROM runs r INDEXED BY idx_runs_id_experiment_id"
                    " WHERE r.id = d.run_id AND r.experiment_id IN"
                    f" ({', '.join('?' * len(experiment_ids))}))")
            args.extend(experiment_ids)
        return self._size(sql, args)

    def _size(self, run_ids_sql: str, args: list[Any]) -> int:
        """How many rows a ``SELECT run_id ...`` gives."""
        return int(self.db.query(f"SELECT count(*) FROM ({run_ids_sql}) AS m", args)[0][0])

    def _walked_page(self, experiment_ids: Sequence[int] | None,
                     node: Comparison | Logical | None, order: Sequence[OrderKey], limit: int,
                     kinds: Sequence[str] | None, offset: int) -> list[dict[str, Any]]:
        """A page of the runs in scope that match, read by a query that tests the filter
        run by run in page order (a metric, param or tag order: walking its index, see
        :meth:`_rows_by_value`) — for a scope or filter that many runs pass."""
        args: list[Any] = []
        where = self._where(experiment_ids, node, kinds, args, per_run=True)
        if order and order[0].field.entity in _KV_TABLE and "e.name" not in where:
            return self._rows_by_value(order, limit, offset, "",
                                       where.replace(" WHERE ", "", 1), args)
        return self._select_rows("FROM runs r", where, args, order, limit, offset)

    def _member_ids(self, node: Comparison | Logical) -> list[str] | None:
        """The ids of the runs a filter's top-level metric, param and tag conditions hold
        for (one comparison, or those of an AND), read from their indexes alone, when
        there are at most ``_PLANNED_SET`` of them; else (or with no such condition) None."""
        members = [i for i in _conjuncts(node) if _is_member_test(i)]
        if not members:
            return None
        args: list[Any] = []
        sql = _all_members(members, args) + " LIMIT ?"
        found = self.db.query_tuples(sql, [*args, _PLANNED_SET + 1])
        return None if len(found) > _PLANNED_SET else [r[0] for r in found]

    def _walk(self, matching: int, limit: int, offset: int) -> bool:
        """Whether walking an index in page order should reach the page within the budget."""
        newest = self.db.query("SELECT max(rowid) FROM runs")[0][0] or 0
        return (offset + limit) * newest <= _WALK_BUDGET * matching

    def _select_rows(self, source: str, where: str, args: list[Any],
                     order: Sequence[OrderKey], limit: int | None, offset: int,
                     lead: str = "", columns: Sequence[str] | None = None,
                     counted: list[int] | None = None, reverse: bool = False
                     ) -> list[dict[str, Any]]:
        """Rows in order, paged. With ``counted`` (pages of at most 1,000 rows), the number
        of rows matching in all is appended to it, from the same query (a window count),
        when the page is not past the end. ``reverse``: read in the reverse order (``offset``
        counted from the end), returned in ``order``."""
        joins: list[str] = []
        join_args: list[Any] = []
        if reverse and (lead or counted is not None):
            raise ValueError("a reversed read takes no lead order and no count")
        order_sql = lead + _order_sql(order, joins, join_args, reverse)
        experiment_join = " JOIN experiments e ON e.id = r.experiment_id "
        picked = "r.*" if columns is None else ", ".join(f"r.{c}" for c in columns
                                                          if c in RUN_COLUMNS)
        head = f"SELECT {picked}, e.name AS experiment "
        all_args = join_args + args
        planned = self.db.dialect != "sqlite" and offset <= 1000  # PostgreSQL: one query
        if limit is None or limit > 1000 or planned:
            window = ", count(*) OVER () AS total_ " if counted is not None else " "
            sql = (head.rstrip() + window + source + experiment_join + " ".join(joins) + where
                   + f" ORDER BY {order_sql}")
            if limit is not None or offset:
                sql += " LIMIT ? OFFSET ?"
                all_args += [INT64_MAX if limit is None else int(limit), int(offset)]
            rows = self.db.query_dicts(sql, all_args)
            if counted is not None:
                for row in rows:
                    total = row.pop("total_")
                if rows:
                    counted.append(int(total))
            return rows[::-1] if reverse else rows
        # Find the page's row ids first, from indexes where the order and filter allow,
        # then read those rows: skipping `offset` runs never reads the runs skipped.
        needs_e = "e.name" in where or "e.name" in order_sql
        window = ", count(*) OVER () AS total_ " if counted is not None else " "
        ids_sql = ("SELECT r.rowid AS row_key" + window + source
                   + (experiment_join if needs_e else " ")
                   + " ".join(joins) + where + f" ORDER BY {order_sql} LIMIT ? OFFSET ?")
        found = self.db.query_tuples(ids_sql, all_args + [int(limit), int(offset)])
        ids = [r[0] for r in found]
        if not ids:
            return []
        if counted is not None:
            counted.append(int(found[0][1]))
        rows = self.db.query_dicts("SELECT r.rowid AS row_number_, " + head[len("SELECT "):]
                                   + "FROM runs r" + experiment_join
                                   + f"WHERE r.rowid IN ({', '.join('?' * len(ids))})", ids)
        by_rowid = {}
        for row in rows:
            by_rowid[row.pop("row_number_")] = row
        if reverse:
            ids.reverse()
        return [by_rowid[i] for i in ids if i in by_rowid]

    def _rows_by_value(self, order: Sequence[OrderKey], limit: int, offset: int,
                       on_entry: str, on_run: str, run_args: list[Any]
                       ) -> list[dict[str, Any]]:
        """A page ordered by a metric, param or tag first: walk its (key, value) index in
        order, then, past the runs that have it, the runs without it (or with NaN).

        ``on_entry`` tests an index entry's ``o.run_id`` before its run row is looked up;
        ``on_run`` (with ``run_args``) tests the run ``r``; either may be empty.
        """
        first, rest = order[0], list(order[1:])
        key = first.field.key
        table, column = _KV_TABLE[first.field.entity], _sort_column(first.field.entity)
        direction = "DESC" if first.descending else "ASC"
        entry = f"o.key = ? AND o.{column} IS NOT NULL" + (f" AND {on_entry}" if on_entry else "")
        run = f" AND {on_run}" if on_run else ""
        if not rest:
            tied = self._page_through_ties(table, column, first.descending, key, entry, run,
                                           run_args, limit, offset)
            if tied is not None:
                return tied
        rows = self._select_rows(f"FROM {table} o CROSS JOIN runs r ON r.id = o.run_id",
                                 " WHERE " + entry + run, [key, *run_args], rest, limit,
                                 offset, lead=f"o.{column} {direction}, ")
        if len(rows) == limit:
            return rows
        if rows:
            have = offset + len(rows)
        else:
            have = int(self.db.query(
                f"SELECT count(*) FROM {table} o CROSS JOIN runs r ON r.id = o.run_id"
                " WHERE " + entry + run, [key, *run_args])[0][0])
        tail = (f" WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id"
                f" AND x.key = ? AND x.{column} IS NOT NULL)" + run)
        return rows + self._select_rows("FROM runs r", tail, [key, *run_args], rest,
                                        limit - len(rows), max(0, offset - have))

    def _page_through_ties(self, table: str, column: str, descending: bool, key: str,
                           entry: str, run: str, run_args: list[Any], limit: int, offset: int
                           ) -> list[dict[str, Any]] | None:
        """A page ordered by a value that many runs share (a param with ten values over
        100,000 runs), without sorting every run of the value the page ends in.

        The value at the page's last position is read from the index; the runs with values
        before it are few (fewer than ``offset + limit``) and sorted; the rest of the page
        is the newest runs with that value, either sorted (a small group) or found by
        walking runs newest first and keeping those with the value, whichever the group's
        size says is cheaper. None when the matching runs end before the page does (the
        caller then pages on into the runs without the value).
        """
        needed = offset + limit
        direction, before = ("DESC", ">") if descending else ("ASC", "<")
        entries = f"FROM {table} o" + (" CROSS JOIN runs r ON r.id = o.run_id" if run else "")
        where, args = " WHERE " + entry + run, [key, *run_args]
        last = self.db.query(f"SELECT o.{column} {entries}{where} ORDER BY o.{column} {direction}"
                             " LIMIT 1 OFFSET ?", [*args, needed - 1])
        if not last:
            return None
        value = last[0][0]
        joined = f"FROM {table} o CROSS JOIN runs r ON r.id = o.run_id"
        rows = self._select_rows(joined, where + f" AND o.{column} {before} ?", [*args, value],
                                 [], needed, 0, lead=f"o.{column} {direction}, ")
        want = needed - len(rows)
        # From the index alone, so an upper bound when a scope or filter narrows the runs.
        plain = f" WHERE o.key = ? AND o.{column} = ?"
        group = int(self.db.query(f"SELECT count(*) FROM {table} o{plain}", [key, value])[0][0])
        newest = self.db.query("SELECT max(rowid) FROM runs")[0][0] or 0
        if group * group <= _GROUP_SORT_FACTOR * want * newest:
            rows += self._select_rows(joined, where + f" AND o.{column} = ?", [*args, value],
                                      [], want, 0)
        else:
            has_value = (f" WHERE EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id"
                         f" AND x.key = ? AND x.{column} = ?)")
            rows += self._select_rows("FROM runs r", has_value + run, [key, value, *run_args],
                                      [], want, 0)
        return rows[offset:needed]
