"""``store.registry`` and ``store.audit``: registered models, versions, tags, aliases,
protected aliases and promotion requests — and the hash-chained audit log every change
writes in the same transaction.

SQL only: who may do what (approvers, self-approval, quorum, gates, protection
ownership) is decided by :mod:`cellops.registry.governance`, which reads and writes
through these methods inside one unit of work (``store.transaction()``), so the rule it
checks holds for the write it guards. Every mutating method takes the ``actor`` and
appends one audit entry (who, when, what, on what, before/after) chained to the previous
one by sha256, inside the transaction that makes the change: a change without its entry,
or an entry without its change, cannot happen.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ModelNotFoundError
from .core import Connection, now_ms
from .dialect import AUDIT_LOCK
from .filter import Comparison, Logical, OrderKey
from .values import INT64_MAX

GENESIS = "0" * 64
_VERSION_COLUMNS = ("name", "version", "run_id", "artifact_path", "sha256", "size", "flavor",
                    "signature", "environment_id", "lineage", "description", "created_at",
                    "created_by")


def entry_hash(seq: int, at: int, actor: str, action: str, obj: str, details: str,
               prev_hash: str) -> str:
    """The sha256 an audit entry must carry: of its content and the previous entry's hash."""
    blob = json.dumps([seq, at, actor, action, obj, details, prev_hash], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def append_audit(conn: sqlite3.Connection, actor: str, action: str, obj: str,
                 details: Mapping[str, Any]) -> dict[str, Any]:
    """Append one entry inside the caller's write transaction (which serialises appends:
    SQLite's write lock; on PostgreSQL the audit lock, taken here)."""
    if hasattr(conn, "advisory_lock"):
        conn.advisory_lock(AUDIT_LOCK)
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = now_ms()
    text = json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)
    digest = entry_hash(seq, at, actor, action, obj, text, prev)
    conn.execute("INSERT INTO audit_log (seq, at, actor, action, object, details, prev_hash, hash)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, at, actor, action, obj, text, prev, digest))
    return {"seq": seq, "hash": digest}


def _no_model(name: str, known: list[str]) -> ModelNotFoundError:
    shown = ", ".join(repr(n) for n in known[:10]) + (", ..." if len(known) > 10 else "") \
        if known else "none yet"
    return ModelNotFoundError(
        f"No registered model named {name!r}. Models: {shown}. Register one with "
        "cellops.register_model(run_or_estimator, name) or `cellops models register RUN NAME`.")


class RegistryTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- reading -------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT name FROM registered_models ORDER BY name")]

    def model(self, name: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM registered_models WHERE name = ?", (name,))
        if row is None:
            raise _no_model(name, self.model_names())
        return dict(row)

    def models(self) -> list[dict[str, Any]]:
        """Every registered model with its latest version number and version count."""
        rows = self.db.query(
            "SELECT m.*, (SELECT max(version) FROM model_versions v WHERE v.name = m.name)"
            " AS latest_version, (SELECT count(*) FROM model_versions v WHERE v.name = m.name)"
            " AS version_count FROM registered_models m ORDER BY m.name")
        return [dict(r) for r in rows]

    def versions(self, name: str | None = None, *, where: str = "", args: Sequence[Any] = (),
                 order: str = "v.name, v.version DESC", limit: int | None = None
                 ) -> list[dict[str, Any]]:
        """Version rows, optionally of one model or matching a compiled filter."""
        sql = "SELECT v.* FROM model_versions v"
        clauses, params = [], list(args)
        if name is not None:
            clauses.append("v.name = ?")
            params.insert(0, name)
        if where:
            clauses.append(where)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [dict(r) for r in self.db.query(sql, params)]

    def version(self, name: str, version: int) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM model_versions WHERE name = ? AND version = ?",
                                (name, version))
        if row is None:
            self.model(name)  # says which models exist when the name is wrong
            known = [r["version"] for r in self.versions(name)]
            raise ModelNotFoundError(
                f"Model {name!r} has no version {version}. Versions: "
                + (", ".join(map(str, sorted(known))) if known else "none") + ".")
        return dict(row)

    def resolve(self, name: str, ref: int | str) -> int:
        """The version number of ``ref``: a number, ``latest``, or an alias."""
        if isinstance(ref, str) and ref.isascii() and ref.isdigit():
            ref = int(ref)
        if isinstance(ref, int):
            if not 0 < ref <= INT64_MAX:  # no version has a number SQLite cannot hold
                self.model(name)
                raise ModelNotFoundError(f"Model {name!r} has no version {ref}.")
            return self.version(name, ref)["version"]
        if ref == "latest":
            row = self.db.query_one("SELECT max(version) FROM model_versions WHERE name = ?", (name,))
            if row is None or row[0] is None:
                self.model(name)
                raise ModelNotFoundError(f"Model {name!r} has no versions yet.")
            return int(row[0])
        row = self.db.query_one("SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                                (name, ref))
        if row is None:
            self.model(name)
            aliases = self.aliases(name)
            raise ModelNotFoundError(
                f"Model {name!r} has no alias {ref!r}. Aliases: "
                + (", ".join(f"{a}->v{v}" for a, v in aliases.items()) if aliases else "none")
                + ". Set one with cellops.set_alias(name, alias, version).")
        return int(row[0])

    def tags(self, name: str, version: int = 0) -> dict[str, str]:
        rows = self.db.query("SELECT key, value FROM model_tags WHERE name = ? AND version = ?",
                             (name, version))
        return {r[0]: r[1] for r in rows}

    def tags_of(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, str]]:
        """Tags of many versions: one indexed range read per model name."""
        wanted: dict[str, set[int]] = {}
        for name, version in keys:
            wanted.setdefault(name, set()).add(version)
        out: dict[tuple[str, int], dict[str, str]] = {}
        for name, versions in wanted.items():
            rows = self.db.query("SELECT version, key, value FROM model_tags WHERE name = ? AND"
                                 " version BETWEEN ? AND ?", (name, min(versions), max(versions)))
            for version, key, value in rows:
                if version in versions:
                    out.setdefault((name, version), {})[key] = value
        return out

    def aliases(self, name: str | None = None) -> dict[str, int]:
        """alias -> version of one model (or ``name@alias`` -> version of all)."""
        if name is not None:
            rows = self.db.query("SELECT alias, version FROM model_aliases WHERE name = ?"
                                 " ORDER BY alias", (name,))
            return {r[0]: r[1] for r in rows}
        rows = self.db.query("SELECT name, alias, version FROM model_aliases ORDER BY name, alias")
        return {f"{r[0]}@{r[1]}": r[2] for r in rows}

    def protection(self, name: str, alias: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM alias_protections WHERE name = ? AND alias = ?",
                                (name, alias))
        return _protection(row)

    def protections(self, name: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM alias_protections"
                             + (" WHERE name = ?" if name else "") + " ORDER BY name, alias",
                             (name,) if name else ())
        return [p for p in (_protection(r) for r in rows) if p]

    def requests(self, status: str | None = None, name: str | None = None,
                 request_id: int | None = None) -> list[dict[str, Any]]:
        """Promotion requests (newest first) with their approvals."""
        clauses, args = [], []
        for column, value in (("status", status), ("name", name), ("id", request_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        rows = self.db.query("SELECT * FROM promotion_requests"
                             + (" WHERE " + " AND ".join(clauses) if clauses else "")
                             + " ORDER BY id DESC", args)
        out = [dict(r) for r in rows]
        if out:
            ids = json.dumps([r["id"] for r in out])
            votes: dict[int, list[dict[str, Any]]] = {}
            for a in self.db.query("SELECT * FROM approvals WHERE request_id IN"
                                   " (SELECT CAST(value AS BIGINT) FROM json_each(?)) ORDER BY at", (ids,)):
                votes.setdefault(a["request_id"], []).append(dict(a))
            for r in out:
                r["approvals"] = votes.get(r["id"], [])
                r["gate_result"] = json.loads(r["gate_result"]) if r["gate_result"] else None
        return out

    def request(self, request_id: int) -> dict[str, Any]:
        found = self.requests(request_id=request_id)
        if not found:
            raise ModelNotFoundError(f"No promotion request {request_id}. List them with "
                                     "`cellops models requests`.")
        return found[0]

    def versions_from_runs(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        """name, version and run_id of the versions registered from these runs."""
        rows = self.db.query("SELECT name, version, run_id FROM model_versions WHERE run_id IN"
                             " (SELECT value FROM json_each(?)) ORDER BY name, version",
                             (json.dumps(list(run_ids)),))
        return [dict(r) for r in rows]

    def state(self) -> dict[str, Any]:
        """What the audit log must account for: every model, version (name/N), alias
        (name@alias -> version), protection, request id and decision (request, approver)."""
        q = self.db.query
        return {
            "models": {r[0] for r in q("SELECT name FROM registered_models")},
            "versions": {f"{r[0]}/{r[1]}" for r in q("SELECT name, version FROM model_versions")},
            "aliases": {f"{r[0]}@{r[1]}": r[2] for r in
                        q("SELECT name, alias, version FROM model_aliases")},
            "protections": {f"{r[0]}@{r[1]}" for r in q("SELECT name, alias FROM alias_protections")},
            "requests": {r[0] for r in q("SELECT id FROM promotion_requests")},
            "decisions": {(r[0], r[1]) for r in q("SELECT request_id, approver FROM approvals")},
        }

    def referenced_blobs(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT DISTINCT sha256 FROM model_versions")}

    # -- changing (each change writes its audit entry in the same transaction) ------------
    def create_version(self, name: str, row: Mapping[str, Any], actor: str, *,
                       description: str | None = None, tags: Mapping[str, str] | None = None
                       ) -> int:
        """Register ``row`` as the next version of ``name`` (created if new); return its number."""

        def tx(conn: sqlite3.Connection) -> int:
            now = now_ms()
            created = conn.execute(
                "INSERT OR IGNORE INTO registered_models (name, description, created_at, created_by,"
                " updated_at) VALUES (?, NULL, ?, ?, ?)", (name, now, actor, now)).rowcount
            if created:
                append_audit(conn, actor, "create_model", name, {"after": {"name": name}})
            # last_version only grows, so a deleted version's number is never handed out again.
            conn.execute("UPDATE registered_models SET last_version = last_version + 1,"
                         " updated_at = ? WHERE name = ?", (now, name))
            version = conn.execute("SELECT last_version FROM registered_models WHERE name = ?",
                                   (name,)).fetchone()[0]
            values = {**row, "name": name, "version": version, "description": description,
                      "created_at": now, "created_by": actor}
            conn.execute(f"INSERT INTO model_versions ({', '.join(_VERSION_COLUMNS)}) VALUES"
                         f" ({', '.join('?' * len(_VERSION_COLUMNS))})",
                         [values.get(c) for c in _VERSION_COLUMNS])
            conn.executemany("INSERT INTO model_tags (name, version, key, value) VALUES (?, ?, ?, ?)",
                             [(name, version, k, v) for k, v in (tags or {}).items()])
            append_audit(conn, actor, "register_version", f"{name}/{version}", {"after": {
                "run_id": row.get("run_id"), "artifact": row.get("artifact_path"),
                "sha256": row.get("sha256"), "tags": dict(tags or {})}})
            return version

        return self.db.write(tx)

    def set_tags(self, name: str, version: int, tags: Mapping[str, str], actor: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            before = {r[0]: r[1] for r in conn.execute(
                "SELECT key, value FROM model_tags WHERE name = ? AND version = ?", (name, version))}
            conn.executemany(
                "INSERT INTO model_tags (name, version, key, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                [(name, version, k, v) for k, v in tags.items()])
            append_audit(conn, actor, "set_tags", f"{name}/{version}" if version else name,
                         {"before": {k: before.get(k) for k in tags}, "after": dict(tags)})

        self.db.write(tx)

    def set_description(self, name: str, version: int, description: str, actor: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            table, where, args = (("model_versions", "name = ? AND version = ?", (name, version))
                                  if version else ("registered_models", "name = ?", (name,)))
            before = conn.execute(f"SELECT description FROM {table} WHERE {where}", args).fetchone()
            conn.execute(f"UPDATE {table} SET description = ? WHERE {where}", (description, *args))
            append_audit(conn, actor, "set_description", f"{name}/{version}" if version else name,
                         {"before": before[0] if before else None, "after": description})

        self.db.write(tx)

    def aliases_at(self, name: str, version: int) -> list[str]:
        """The aliases that point at this version."""
        return [r[0] for r in self.db.query("SELECT alias FROM model_aliases WHERE name = ? AND"
                                            " version = ? ORDER BY alias", (name, version))]

    def pending_requests(self, name: str, *, version: int | None = None,
                         alias: str | None = None) -> list[int]:
        """Ids of the PENDING promotion requests of a model (to one version, or of one alias)."""
        sql, args = "SELECT id FROM promotion_requests WHERE name = ? AND status = 'PENDING'", [name]
        if version is not None:
            sql, args = sql + " AND version = ?", args + [version]
        if alias is not None:
            sql, args = sql + " AND alias = ?", args + [alias]
        return [r[0] for r in self.db.query(sql + " ORDER BY id", args)]

    def delete_version(self, name: str, version: int, actor: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT run_id, sha256 FROM model_versions WHERE name = ? AND"
                               " version = ?", (name, version)).fetchone()
            conn.execute("DELETE FROM model_tags WHERE name = ? AND version = ?", (name, version))
            conn.execute("DELETE FROM model_versions WHERE name = ? AND version = ?", (name, version))
            append_audit(conn, actor, "delete_version", f"{name}/{version}",
                         {"before": {"run_id": row[0], "sha256": row[1]} if row else None})

        self.db.write(tx)

    def set_alias(self, name: str, alias: str, version: int, actor: str,
                  request_id: int | None = None) -> int | None:
        """Point ``alias`` at ``version`` (atomically); return the version it pointed at."""

        def tx(conn: sqlite3.Connection) -> int | None:
            return _move_alias(conn, name, alias, version, actor, request_id)

        return self.db.write(tx)

    def delete_alias(self, name: str, alias: str, actor: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                               (name, alias)).fetchone()
            if row is None:
                raise ModelNotFoundError(f"Model {name!r} has no alias {alias!r}.")
            conn.execute("DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias))
            append_audit(conn, actor, "delete_alias", f"{name}@{alias}",
                         {"before": {"version": row[0]}, "after": None})

        self.db.write(tx)

    def protect(self, name: str, alias: str, approvers: Sequence[str], min_approvals: int,
                gate: str | None, actor: str) -> None:
        """Protect (or change the protection of) ``name@alias``."""

        def tx(conn: sqlite3.Connection) -> None:
            before = _protection(conn.execute("SELECT * FROM alias_protections WHERE name = ? AND"
                                              " alias = ?", (name, alias)).fetchone())
            conn.execute(
                "INSERT INTO alias_protections (name, alias, approvers, min_approvals, gate,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, alias)"
                " DO UPDATE SET approvers = excluded.approvers, min_approvals ="
                " excluded.min_approvals, gate = excluded.gate",
                (name, alias, json.dumps(list(approvers)), min_approvals, gate, now_ms(), actor))
            append_audit(conn, actor, "protect_alias", f"{name}@{alias}", {
                "before": _brief(before),
                "after": {"approvers": list(approvers), "min_approvals": min_approvals, "gate": gate}})

        self.db.write(tx)

    def unprotect(self, name: str, alias: str, actor: str) -> list[int]:
        """Remove the protection and cancel its pending requests; return their ids."""

        def tx(conn: sqlite3.Connection) -> list[int]:
            before = _protection(conn.execute("SELECT * FROM alias_protections WHERE name = ? AND"
                                              " alias = ?", (name, alias)).fetchone())
            conn.execute("DELETE FROM alias_protections WHERE name = ? AND alias = ?", (name, alias))
            cancelled = [r[0] for r in conn.execute(
                "SELECT id FROM promotion_requests WHERE name = ? AND alias = ? AND status ="
                " 'PENDING'", (name, alias))]
            conn.execute("UPDATE promotion_requests SET status = 'CANCELLED', decided_at = ? WHERE"
                         " name = ? AND alias = ? AND status = 'PENDING'", (now_ms(), name, alias))
            append_audit(conn, actor, "unprotect_alias", f"{name}@{alias}",
                         {"before": _brief(before), "after": None, "cancelled_requests": cancelled})
            return cancelled

        return self.db.write(tx)

    def create_request(self, name: str, alias: str, version: int, actor: str, gate: str | None,
                       gate_result: Mapping[str, Any] | None) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            current = conn.execute("SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                                   (name, alias)).fetchone()
            passed = None if gate_result is None else int(bool(gate_result.get("passed")))
            cur = conn.execute(
                "INSERT INTO promotion_requests (name, alias, version, status, requested_by,"
                " requested_at, gate, gate_passed, gate_result, previous_version) VALUES"
                " (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?) RETURNING id",
                (name, alias, version, actor, now_ms(), gate, passed,
                 json.dumps(gate_result) if gate_result is not None else None,
                 current[0] if current else None))
            request_id = int(cur.fetchone()[0])
            append_audit(conn, actor, "request_promotion", f"{name}@{alias}", {
                "request": request_id, "before": {"version": current[0] if current else None},
                "after": {"version": version}, "gate_passed": passed})
            return request_id

        return self.db.write(tx)

    def record_decision(self, request: Mapping[str, Any], actor: str, approve: bool,
                        comment: str | None) -> int:
        """Store an approver's decision on ``request`` (a row of :meth:`request`); return
        how many approvals it has now."""

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO approvals (request_id, approver, decision, comment, at)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (request["id"], actor, "approve" if approve else "reject", comment,
                          now_ms()))
            append_audit(conn, actor, "approve" if approve else "reject",
                         f"{request['name']}@{request['alias']}",
                         {"request": request["id"], "version": request["version"],
                          "comment": comment})
            return conn.execute("SELECT count(*) FROM approvals WHERE request_id = ? AND"
                                " decision = 'approve'", (request["id"],)).fetchone()[0]

        return self.db.write(tx)

    def close_request(self, request_id: int, status: str) -> None:
        """Mark a request APPROVED or REJECTED (its decision time: now)."""
        self.db.write(lambda conn: conn.execute(
            "UPDATE promotion_requests SET status = ?, decided_at = ? WHERE id = ?",
            (status, now_ms(), request_id)))


def _move_alias(conn: sqlite3.Connection, name: str, alias: str, version: int, actor: str,
                request_id: int | None) -> int | None:
    exists = conn.execute("SELECT 1 FROM model_versions WHERE name = ? AND version = ?",
                          (name, version)).fetchone()
    if exists is None:
        raise ModelNotFoundError(f"Model {name!r} has no version {version}; an alias must point at "
                                 "a registered version.")
    before = conn.execute("SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                          (name, alias)).fetchone()
    conn.execute(
        "INSERT INTO model_aliases (name, alias, version, updated_at, updated_by) VALUES"
        " (?, ?, ?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version,"
        " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        (name, alias, version, now_ms(), actor))
    append_audit(conn, actor, "set_alias", f"{name}@{alias}", {
        "before": {"version": before[0] if before else None}, "after": {"version": version},
        **({"request": request_id} if request_id is not None else {})})
    return before[0] if before else None


def _protection(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["approvers"] = json.loads(out["approvers"])
    return out


def _brief(protection: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if protection is None:
        return None
    return {k: protection[k] for k in ("approvers", "min_approvals", "gate")}


class AuditTable:
    """``store.audit``: the append-only, hash-chained log of registry and governance changes."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def entries(self, *, limit: int = 100, offset: int = 0, obj: str | None = None,
                newest_first: bool = True) -> list[dict[str, Any]]:
        # A model's entries: the model itself, its versions (name/N) and aliases (name@A).
        # No LIKE: '_' and '%' are legal in model names.
        where, args = ("", []) if obj is None else (
            " WHERE object = ? OR substr(object, 1, ?) IN (?, ?)",
            [obj, len(obj) + 1, f"{obj}/", f"{obj}@"])
        rows = self.db.query(f"SELECT * FROM audit_log{where} ORDER BY seq"
                             f"{' DESC' if newest_first else ''} LIMIT ? OFFSET ?",
                             [*args, limit, offset])
        out = []
        for r in rows:
            entry = dict(r)
            entry["details"] = json.loads(entry["details"])
            out.append(entry)
        return out

    def append(self, actor: str, action: str, obj: str, details: Mapping[str, Any]
               ) -> dict[str, Any]:
        """Append one entry (in the caller's unit of work, when there is one)."""
        return self.db.write(lambda conn: append_audit(conn, actor, action, obj, details))

    def head(self) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1")
        return dict(row) if row else None

    def rows_in_order(self) -> Iterable[sqlite3.Row]:
        """Every entry in stored order (as written), for verification."""
        return self.db.query("SELECT * FROM audit_log ORDER BY seq")


def compile_version_filter(node: Comparison | Logical | None, args: list[Any]) -> str:
    """SQL over ``model_versions v`` for a filter parsed with ``MODEL_VERSIONS``; values bound."""
    from .search import _predicate, dataset_predicate

    if node is None:
        return ""
    if isinstance(node, Logical):
        return "(" + f" {node.op} ".join(compile_version_filter(i, args) for i in node.items) + ")"
    f = node.field
    if f.entity == "datasets":  # the lineage recorded with the version (kept if the run goes)
        if node.op in ("IS NULL", "IS NOT NULL"):
            neg = "NOT " if node.op == "IS NULL" else ""
            return f"{neg}EXISTS (SELECT 1 FROM json_each(v.lineage))"
        column = f"json_extract(j.value, '$.{f.key}')"
        return (f"EXISTS (SELECT 1 FROM json_each(v.lineage) j WHERE "
                f"{dataset_predicate(column, node, args)})")
    if f.entity == "attributes":
        if f.key == "alias":
            if node.op in ("IS NULL", "IS NOT NULL"):
                neg = "NOT " if node.op == "IS NULL" else ""
                return (f"{neg}EXISTS (SELECT 1 FROM model_aliases a WHERE a.name = v.name AND"
                        " a.version = v.version)")
            sub = "SELECT 1 FROM model_aliases a WHERE a.name = v.name AND a.version = v.version AND "
            return f"EXISTS ({sub}{_predicate('a.alias', node, args, numeric_text=False)})"
        column = f"v.{f.key}"
        if node.op in ("IS NULL", "IS NOT NULL"):
            return f"{column} {node.op}"
        return _predicate(column, node, args, numeric_text=False)
    table, owner = {"tags": ("model_tags t", "t.name = v.name AND t.version = v.version"),
                    "metrics": ("latest_metrics t", "t.run_id = v.run_id"),
                    "params": ("params t", "t.run_id = v.run_id")}[f.entity]
    args.append(f.key)
    head = f"SELECT 1 FROM {table} WHERE {owner} AND t.key = ?"
    if node.op == "IS NULL":
        return f"NOT EXISTS ({head})"
    if node.op == "IS NOT NULL":
        return f"EXISTS ({head})"
    return f"EXISTS ({head} AND {_predicate('t.value', node, args, numeric_text=f.entity != 'metrics')})"


def order_versions(order: Sequence[OrderKey]) -> str:
    """ORDER BY for model versions: their attributes only (default newest first)."""
    parts = []
    for key in order:
        if key.field.entity != "attributes" or key.field.key == "alias":
            from ..errors import FilterSyntaxError

            raise FilterSyntaxError(f"Model versions sort by name, version, created_at, ...; not "
                                    f"{key.field}.")
        parts.append(f"v.{key.field.key} {'DESC' if key.descending else 'ASC'}")
    return ", ".join(parts + ["v.created_at DESC", "v.version DESC"])
