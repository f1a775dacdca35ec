"""``store.cells``: the cell execution history of notebook runs (``%track on``)."""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping

from .core import Connection


class CellTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def add(self, run_id: str, cell: Mapping[str, Any]) -> int:
        """Append one executed cell to a run's history; return its sequence number."""

        def tx(conn: sqlite3.Connection) -> int:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM cells WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO cells (run_id, seq, execution_count, source, start_time, duration_ms,"
                " status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, seq, cell.get("execution_count"), cell["source"], cell["start_time"],
                 cell.get("duration_ms"), cell["status"], cell.get("error")),
            )
            return seq

        return self.db.write_for_run(run_id, tx)

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM cells WHERE run_id = ? ORDER BY seq", (run_id,))
        return [dict(r) for r in rows]
