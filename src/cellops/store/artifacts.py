"""``store.artifacts``: which run calls which blob by which logical name."""

from __future__ import annotations

from typing import Any

from ..errors import ArtifactNotFoundError
from .core import Connection, now_ms


class ArtifactTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def put(self, run_id: str, path: str, sha256: str, size: int, media_type: str | None) -> None:
        """Link a stored blob to a run under ``path`` (replacing what was there)."""
        self.db.write_for_run(
            run_id,
            lambda conn: conn.execute(
                "INSERT INTO artifacts (run_id, path, sha256, size, media_type, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256,"
                "  size = excluded.size, media_type = excluded.media_type,"
                "  created_at = excluded.created_at",
                (run_id, path, sha256, size, media_type, now_ms()),
            ),
        )

    def list(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT path, sha256, size, media_type, created_at FROM artifacts"
            " WHERE run_id = ? ORDER BY path",
            (run_id,),
        )
        return [dict(r) for r in rows]

    def get(self, run_id: str, path: str) -> dict[str, Any]:
        row = self.db.query_one(
            "SELECT path, sha256, size, media_type, created_at FROM artifacts"
            " WHERE run_id = ? AND path = ?",
            (run_id, path),
        )
        if row is None:
            names = [a["path"] for a in self.list(run_id)]
            shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
            raise ArtifactNotFoundError(
                f"Run {run_id[:8]} has no artifact {path!r}. "
                + (f"Artifacts logged: {shown}." if names else "It has no artifacts.")
            )
        return dict(row)

    def referenced_blobs(self) -> set[str]:
        """Every blob hash the database points at (artifacts, sources, git diffs, registered
        model versions and feature views — which outlive the runs that made them)."""
        rows = self.db.query(
            "SELECT sha256 FROM artifacts"
            " UNION SELECT source_sha FROM runs WHERE source_sha IS NOT NULL"
            " UNION SELECT git_diff_sha FROM runs WHERE git_diff_sha IS NOT NULL"
            " UNION SELECT sha256 FROM model_versions"
            " UNION SELECT artifact FROM feature_views"
        )
        return {r[0] for r in rows}
