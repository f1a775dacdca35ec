"""Queries for the pipeline step cache."""

from __future__ import annotations

import json
from typing import Any

from .core import Connection, now_ms


class PipelineQueries(Connection):
    def put_step_cache(self, key: str, pipeline: str, step: str, run_id: str,
                       parts: dict[str, Any], outputs: dict[str, str]) -> None:
        self.write(lambda conn: conn.execute(
            "INSERT INTO step_cache (key, pipeline, step, run_id, parts, outputs, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " run_id = excluded.run_id, parts = excluded.parts, outputs = excluded.outputs,"
            " created_at = excluded.created_at",
            (key, pipeline, step, run_id, json.dumps(parts, sort_keys=True),
             json.dumps(outputs, sort_keys=True), now_ms())))

    def get_step_cache(self, key: str) -> dict[str, Any] | None:
        row = self.query_one(
            "SELECT c.*, r.status FROM step_cache c JOIN runs r ON r.id = c.run_id WHERE c.key = ?",
            (key,))
        return _decode(row)

    def last_step_cache(self, pipeline: str, step: str) -> dict[str, Any] | None:
        row = self.query_one(
            "SELECT c.*, r.status FROM step_cache c JOIN runs r ON r.id = c.run_id"
            " WHERE c.pipeline = ? AND c.step = ? ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1",
            (pipeline, step))
        return _decode(row)


def _decode(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["parts"] = json.loads(out["parts"])
    out["outputs"] = json.loads(out["outputs"])
    return out
