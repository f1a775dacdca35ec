"""``store.roles``: who holds which role in a shared workspace."""

from __future__ import annotations

from typing import Any

from .core import Connection, now_ms


class RoleTable:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def all(self) -> list[dict[str, Any]]:
        return self.db.query_dicts(
            "SELECT member, role, granted_by, granted_at FROM workspace_roles ORDER BY member")

    def role_of(self, member: str) -> str | None:
        row = self.db.query_one("SELECT role FROM workspace_roles WHERE member = ?", (member,))
        return row[0] if row else None

    def any(self) -> bool:
        return bool(self.db.query("SELECT 1 FROM workspace_roles LIMIT 1"))

    def grant(self, member: str, role: str, by: str) -> str | None:
        """Give ``member`` ``role`` (replacing the one they had, which is returned)."""

        def tx(conn: Any) -> str | None:
            before = conn.execute("SELECT role FROM workspace_roles WHERE member = ?",
                                  (member,)).fetchone()
            conn.execute("INSERT INTO workspace_roles (member, role, granted_by, granted_at)"
                         " VALUES (?, ?, ?, ?) ON CONFLICT (member) DO UPDATE SET"
                         " role = excluded.role, granted_by = excluded.granted_by,"
                         " granted_at = excluded.granted_at", (member, role, by, now_ms()))
            return before[0] if before else None

        return self.db.write(tx)

    def revoke(self, member: str) -> str | None:
        """Remove ``member``'s role; return it (None when they had none)."""

        def tx(conn: Any) -> str | None:
            before = conn.execute("SELECT role FROM workspace_roles WHERE member = ?",
                                  (member,)).fetchone()
            conn.execute("DELETE FROM workspace_roles WHERE member = ?", (member,))
            return before[0] if before else None

        return self.db.write(tx)

    def count(self, role: str) -> int:
        return int(self.db.query("SELECT count(*) FROM workspace_roles WHERE role = ?",
                                 (role,))[0][0])
