"""``store.datasets``: datasets stored once by name and fingerprint, and the runs they feed."""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping

from .core import Connection, now_ms

_COLUMNS = ("name", "fingerprint", "source", "format", "schema", "num_rows", "num_columns",
            "profile")


class DatasetTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def link(self, run_id: str, dataset: Mapping[str, Any], role: str) -> int:
        """Store the dataset once (by name + fingerprint) and link it to the run; return its id."""

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                f"INSERT OR IGNORE INTO datasets ({', '.join(_COLUMNS)}, created_at)"
                f" VALUES ({', '.join('?' * len(_COLUMNS))}, ?)",
                [dataset.get(c) for c in _COLUMNS] + [now_ms()],
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

        return self.db.write_for_run(run_id, tx)

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's datasets with their role (input/output)."""
        rows = self.db.query(
            "SELECT d.*, rd.role FROM run_datasets rd JOIN datasets d ON d.id = rd.dataset_id"
            " WHERE rd.run_id = ? ORDER BY rd.role, d.name",
            (run_id,),
        )
        return [dict(r) for r in rows]
