"""``store.features``: feature views (one row per version), the online store (the latest
value per view and entity key) and how far each view was materialized.

A version is added in one transaction that reads the latest one: the same content
fingerprint is not a new version (two processes registering the same data make one).
The online store is written in one transaction per materialization: newer values, the
expiry of values older than the view's TTL, and the materialization's end move together.
Timestamps are UTC nanoseconds.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

from .core import Connection, now_ms

_VIEW_COLUMNS = ("name", "version", "fingerprint", "entities", "timestamp", "created_timestamp",
                 "ttl_ms", "features", "description", "tags", "source", "artifact", "num_rows",
                 "min_ts", "max_ts", "created_at", "created_by")


class FeatureTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- views -------------------------------------------------------------------------------
    def add_version(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store ``row`` as the view's next version, unless its latest version has the same
        fingerprint: then that version is returned (its description and tags updated).
        Returns ``(version row, created)``."""

        def tx(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            latest = conn.execute(
                "SELECT * FROM feature_views WHERE name = ? ORDER BY version DESC LIMIT 1",
                (row["name"],)).fetchone()
            if latest is not None and latest["fingerprint"] == row["fingerprint"]:
                conn.execute("UPDATE feature_views SET description = ?, tags = ? WHERE name = ?"
                             " AND version = ?", (row.get("description"), row.get("tags"),
                                                  row["name"], latest["version"]))
                return {**dict(latest), "description": row.get("description"),
                        "tags": row.get("tags")}, False
            values = {**row, "version": (latest["version"] + 1) if latest else 1,
                      "created_at": now_ms()}
            conn.execute(f"INSERT INTO feature_views ({', '.join(_VIEW_COLUMNS)}) VALUES"
                         f" ({', '.join('?' * len(_VIEW_COLUMNS))})",
                         [values.get(c) for c in _VIEW_COLUMNS])
            return values, True

        return self.db.write(tx)

    def get(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        if version is None:
            row = self.db.query_one("SELECT * FROM feature_views WHERE name = ?"
                                    " ORDER BY version DESC LIMIT 1", (name,))
        else:
            row = self.db.query_one("SELECT * FROM feature_views WHERE name = ? AND version = ?",
                                    (name, int(version)))
        return dict(row) if row else None

    def versions(self, name: str) -> list[dict[str, Any]]:
        return self.db.query_dicts("SELECT * FROM feature_views WHERE name = ?"
                                   " ORDER BY version DESC", (name,))

    def latest_all(self) -> list[dict[str, Any]]:
        """The latest version of every view, by name, with its number of versions."""
        return self.db.query_dicts(
            "SELECT v.*, n.versions FROM feature_views v JOIN (SELECT name, MAX(version) AS top,"
            " COUNT(*) AS versions FROM feature_views GROUP BY name) n"
            " ON n.name = v.name AND n.top = v.version ORDER BY v.name")

    def names(self) -> list[str]:
        return [r[0] for r in self.db.query_tuples(
            "SELECT DISTINCT name FROM feature_views ORDER BY name")]

    def artifacts(self) -> set[str]:
        """The blobs feature views hold (kept by garbage collection)."""
        return {r[0] for r in self.db.query_tuples("SELECT DISTINCT artifact FROM feature_views")}

    def models_using(self, name: str) -> list[dict[str, Any]]:
        """Model versions whose run retrieved features of the view ``name``."""
        return self.db.query_dicts(
            "SELECT DISTINCT mv.name AS model, mv.version AS model_version, d.fingerprint"
            " FROM datasets d JOIN run_datasets rd ON rd.dataset_id = d.id"
            " JOIN model_versions mv ON mv.run_id = rd.run_id"
            " WHERE d.format = 'feature_view' AND d.name LIKE ? ESCAPE '\\'"
            " ORDER BY mv.name, mv.version",
            (_like_prefix(f"features:{name}@v"),))

    # -- online store ------------------------------------------------------------------------
    def materialize(self, view: str, version: int, rows: Iterable[tuple[str, int, str]], *,
                    end_ns: int, expire_before_ns: int | None, full: bool) -> tuple[int, int]:
        """Write ``(entity_key, feature_ts, values_json)`` rows of ``view`` at ``version``:
        each replaces the stored value of its key when it is newer (or from another
        version); with ``full`` the view's rows are replaced altogether. Values older than
        ``expire_before_ns`` are removed. Returns ``(rows written, rows expired)``."""
        now = now_ms()
        batch = [(view, key, version, ts, values, now) for key, ts, values in rows]

        def tx(conn: sqlite3.Connection) -> tuple[int, int]:
            if full:
                conn.execute("DELETE FROM online_features WHERE view = ?", (view,))
            written = conn.executemany(
                "INSERT INTO online_features (view, entity_key, version, feature_ts,"
                " feature_values, written_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (view, entity_key) DO UPDATE SET version = excluded.version,"
                " feature_ts = excluded.feature_ts, feature_values = excluded.feature_values,"
                " written_at = excluded.written_at"
                " WHERE excluded.feature_ts > online_features.feature_ts"
                " OR excluded.version != online_features.version", batch).rowcount
            written = max(0, written)  # inserted or updated (a stale row changes nothing)
            expired = 0
            if expire_before_ns is not None:
                expired = conn.execute("DELETE FROM online_features WHERE view = ? AND"
                                       " feature_ts < ?", (view, expire_before_ns)).rowcount
            conn.execute(
                "INSERT INTO feature_materializations (view, version, end_ns, rows_written,"
                " rows_expired, materialized_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (view) DO UPDATE SET version = excluded.version,"
                " end_ns = excluded.end_ns, rows_written = excluded.rows_written,"
                " rows_expired = excluded.rows_expired, materialized_at = excluded.materialized_at",
                (view, version, end_ns, written, expired, now))
            return written, expired

        return self.db.write(tx)

    def materialization(self, view: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM feature_materializations WHERE view = ?", (view,))
        return dict(row) if row else None

    def online_get(self, view: str, keys: Sequence[str]) -> dict[str, tuple[int, str, int]]:
        """``entity_key -> (feature_ts, values_json, version)`` for the keys stored."""
        out: dict[str, tuple[int, str, int]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):  # SQLite's bound-parameter limit, with room
            chunk = unique[i:i + 500]
            for key, ts, values, version in self.db.query_tuples(
                    "SELECT entity_key, feature_ts, feature_values, version FROM online_features"
                    f" WHERE view = ? AND entity_key IN ({', '.join('?' * len(chunk))})",
                    [view, *chunk]):
                out[key] = (ts, values, version)
        return out

    def online_stats(self, view: str) -> dict[str, Any]:
        """How many entities the online store holds for the view, and their newest and
        oldest values' timestamps."""
        row = self.db.query_one("SELECT COUNT(*) AS entities, MIN(feature_ts) AS oldest,"
                                " MAX(feature_ts) AS newest FROM online_features WHERE view = ?",
                                (view,))
        return dict(row) if row else {"entities": 0, "oldest": None, "newest": None}


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
