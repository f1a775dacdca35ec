"""``store.pipelines``: the step cache, and the state of each step of a pipeline run."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping, Sequence

from .core import Connection, now_ms
from .values import ids_param

STEP_FIELDS = ("name", "status", "run_id", "duration_s", "reason", "error")


class PipelineTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- the step cache: a finished step run, by the key of all it depended on ---------------
    def put_cache(self, key: str, pipeline: str, step: str, run_id: str,
                  parts: dict[str, Any], outputs: dict[str, str]) -> None:
        self.db.write(lambda conn: conn.execute(
            "INSERT INTO step_cache (key, pipeline, step, run_id, parts, outputs, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " run_id = excluded.run_id, parts = excluded.parts, outputs = excluded.outputs,"
            " created_at = excluded.created_at",
            (key, pipeline, step, run_id, json.dumps(parts, sort_keys=True),
             json.dumps(outputs, sort_keys=True), now_ms())))

    def get_cache(self, key: str) -> dict[str, Any] | None:
        row = self.db.query_one(
            "SELECT c.*, r.status FROM step_cache c JOIN runs r ON r.id = c.run_id WHERE c.key = ?",
            (key,))
        return _decode(row)

    def last_cache(self, pipeline: str, step: str) -> dict[str, Any] | None:
        row = self.db.query_one(
            "SELECT c.*, r.status FROM step_cache c JOIN runs r ON r.id = c.run_id"
            " WHERE c.pipeline = ? AND c.step = ? ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1",
            (pipeline, step))
        return _decode(row)

    # -- step state of pipeline runs -------------------------------------------------------
    def set_steps(self, pipeline_run_id: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """Record every step of a pipeline run as it stands now (in pipeline order)."""

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM pipeline_steps WHERE pipeline_run_id = ?", (pipeline_run_id,))
            conn.executemany(
                "INSERT INTO pipeline_steps (pipeline_run_id, position, name, status, run_id,"
                " duration_s, reason, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(pipeline_run_id, i, s["name"], s["status"], s.get("run_id"),
                  s.get("duration_s"), s.get("reason"), s.get("error"), now_ms())
                 for i, s in enumerate(steps)])

        self.db.write_for_run(pipeline_run_id, tx)

    def latest_step_run(self, pipeline: str, step: str) -> str | None:
        """The run of ``step`` (ran or reused) in the newest pipeline run named ``pipeline``
        that got that far."""
        row = self.db.query_one(
            "SELECT s.run_id FROM pipeline_steps s JOIN runs p ON p.id = s.pipeline_run_id"
            " WHERE p.kind = 'pipeline' AND p.name = ? AND s.name = ? AND s.run_id IS NOT NULL"
            " AND s.status IN ('ran', 'cached') ORDER BY p.start_time DESC, p.rowid DESC LIMIT 1",
            (pipeline, step))
        return row[0] if row else None

    def steps_of(self, pipeline_run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The steps of each pipeline run, in pipeline order."""
        rows = self.db.query(
            "SELECT pipeline_run_id, name, status, run_id, duration_s, reason, error"
            " FROM pipeline_steps WHERE pipeline_run_id IN (SELECT value FROM json_each(?))"
            " ORDER BY pipeline_run_id, position", (ids_param(pipeline_run_ids),))
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(dict(zip(STEP_FIELDS, tuple(r)[1:])))
        return out


def _decode(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["parts"] = json.loads(out["parts"])
    out["outputs"] = json.loads(out["outputs"])
    return out
