"""``store.experiments`` and ``store.environments``: where runs are grouped, and what they ran on."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping

from ..errors import ExperimentNotFoundError
from .core import Connection, now_ms


class ExperimentTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def ensure(self, name: str) -> int:
        """The id of experiment ``name``, created if missing."""
        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?, ?)",
                (name, now_ms()),
            )
            return conn.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()[0]

        row = self.db.query_one("SELECT id FROM experiments WHERE name = ?", (name,))
        return row[0] if row else self.db.write(tx)

    def id_of(self, name: str) -> int:
        row = self.db.query_one("SELECT id FROM experiments WHERE name = ?", (name,))
        if row is None:
            names = [r[0] for r in self.db.query("SELECT name FROM experiments ORDER BY name")]
            raise ExperimentNotFoundError(
                f"No experiment named {name!r}. Experiments: "
                + (", ".join(repr(n) for n in names) if names else "none yet")
                + ". Create one with cellops.set_experiment(name)."
            )
        return row[0]

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        # run_count and last_run_time are kept by triggers on runs (migration 6).
        rows = self.db.query(
            "SELECT id, name, created_at, description, run_count, last_run_time"
            " FROM experiments" + (" WHERE name = ?" if name is not None else "")
            + " ORDER BY name",
            [name] if name is not None else [],
        )
        return [dict(r) for r in rows]


class EnvironmentTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def ensure(self, env: Mapping[str, Any]) -> None:
        """Store an environment once per distinct id."""
        self.db.write(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO environments"
                " (id, python, implementation, platform, packages, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (env["id"], env["python"], env["implementation"], env["platform"],
                 json.dumps(env["packages"], sort_keys=True), now_ms()),
            )
        )

    def get(self, env_id: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT * FROM environments WHERE id = ?", (env_id,))
        if row is None:
            return None
        env = dict(row)
        env["packages"] = json.loads(env["packages"] or "{}")
        return env
