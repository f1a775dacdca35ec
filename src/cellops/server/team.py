"""REST routes of a team's roles (docs/team.md, "Who is acting, and roles").

    GET    roles          who holds which role, the asking user's own role, and where the
                          workspace keeps its data (what the sidebar's Team tab shows)
    PUT    roles/USER     grant USER a role (body: {"role": "editor"}); admins only
    DELETE roles/USER     take USER's role away; admins only

Every check is the API's (:func:`cellops.grant_role`, :func:`cellops.revoke_role`) run as
the authenticated Jupyter user, so the server enforces exactly what the CLI does.
"""

from __future__ import annotations

import json
from typing import Any

import cellops

from .base import Handler, web

USER = r"([^/]{1,200})"


def _roles() -> dict[str, Any]:
    granted = cellops.workspace_roles()
    ws = cellops.workspace()
    return {"enforced": bool(granted),
            "you": {"user": cellops.current_user(), "role": cellops.role_of()},
            "roles": granted,
            # Where the data lives (never a password: the store URL is shown without one).
            "workspace": {"shared": ws.store_url is not None, "store": ws.store.where,
                          "artifacts": ws.artifact_root}}


class RolesHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.workspace()
        self.reply(await self.call(_roles))


class RoleHandler(Handler):
    @web.authenticated
    async def put(self, user: str) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        role = body.get("role") if isinstance(body, dict) else None
        if not isinstance(role, str):
            raise web.HTTPError(400, log_message='The body must be JSON naming the role, e.g. '
                                '{"role": "editor"} (viewer, editor, approver or admin).',
                                reason="bad body")
        self.workspace()
        self.reply(await self.call(cellops.grant_role, user, role))

    @web.authenticated
    async def delete(self, user: str) -> None:
        self.workspace()
        self.reply(await self.call(cellops.revoke_role, user))


ROUTES = [("roles", RolesHandler), (rf"roles/{USER}", RoleHandler)]
