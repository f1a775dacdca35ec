"""Queries for artifacts, datasets and the run inputs/outputs that link them."""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping

from ..errors import ArtifactNotFoundError
from .core import Connection, now_ms


class LineageQueries(Connection):
    # -- artifacts ---------------------------------------------------------
    def put_artifact(
        self, run_id: str, path: str, sha256: str, size: int, media_type: str | None
    ) -> None:
        self.write_for_run(
            run_id,
            lambda conn: conn.execute(
                "INSERT INTO artifacts (run_id, path, sha256, size, media_type, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256,"
                "  size = excluded.size, media_type = excluded.media_type,"
                "  created_at = excluded.created_at",
                (run_id, path, sha256, size, media_type, now_ms()),
            )
        )

    def list_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT path, sha256, size, media_type, created_at FROM artifacts"
            " WHERE run_id = ? ORDER BY path",
            (run_id,),
        )
        return [dict(r) for r in rows]

    def get_artifact(self, run_id: str, path: str) -> dict[str, Any]:
        row = self.query_one(
            "SELECT path, sha256, size, media_type, created_at FROM artifacts"
            " WHERE run_id = ? AND path = ?",
            (run_id, path),
        )
        if row is None:
            names = [a["path"] for a in self.list_artifacts(run_id)]
            shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
            raise ArtifactNotFoundError(
                f"Run {run_id[:8]} has no artifact {path!r}. "
                + (f"Artifacts logged: {shown}." if names else "It has no artifacts.")
            )
        return dict(row)

    def referenced_blobs(self) -> set[str]:
        """Every blob hash the database points at (artifacts, sources, git diffs)."""
        rows = self.query(
            "SELECT sha256 FROM artifacts"
            " UNION SELECT source_sha FROM runs WHERE source_sha IS NOT NULL"
            " UNION SELECT git_diff_sha FROM runs WHERE git_diff_sha IS NOT NULL"
        )
        return {r[0] for r in rows}

    # -- datasets ----------------------------------------------------------
    def link_dataset(self, run_id: str, dataset: Mapping[str, Any], role: str) -> int:
        """Store the dataset once (by name + fingerprint) and link it to the run; return its id."""
        cols = ("name", "fingerprint", "source", "format", "schema", "num_rows", "num_columns",
                "profile")

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                f"INSERT OR IGNORE INTO datasets ({', '.join(cols)}, created_at)"
                f" VALUES ({', '.join('?' * len(cols))}, ?)",
                [dataset.get(c) for c in cols] + [now_ms()],
            )
            dataset_id = conn.execute(
                "SELECT id FROM datasets WHERE name = ? AND fingerprint = ?",
                (dataset["name"], dataset["fingerprint"]),
            ).fetchone()[0]
            conn.execute(
                "INSERT OR IGNORE INTO run_datasets (run_id, dataset_id, role, created_at)"
                " VALUES (?, ?, ?, ?)",
                (run_id, dataset_id, role, now_ms()),
            )
            return dataset_id

        return self.write_for_run(run_id, tx)

    def run_datasets(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT d.*, rd.role FROM run_datasets rd JOIN datasets d ON d.id = rd.dataset_id"
            " WHERE rd.run_id = ? ORDER BY rd.role, d.name",
            (run_id,),
        )
        return [dict(r) for r in rows]

    def get_dataset(self, dataset_id: int) -> dict[str, Any] | None:
        row = self.query_one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        return dict(row) if row else None

    def dataset_runs(self, dataset_id: int) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT run_id, role FROM run_datasets WHERE dataset_id = ? ORDER BY created_at",
            (dataset_id,),
        )
        return [dict(r) for r in rows]
