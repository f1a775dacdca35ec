"""Who is acting: what the audit log records and what approvals check (every area's).

The OS user, unless ``CELLOPS_USER`` names another; inside the Jupyter server, the
server's authenticated user (the server wraps each call in :func:`acting_as`).
"""

from __future__ import annotations

import os
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from .errors import InvalidArgumentError

ENV_USER = "CELLOPS_USER"
_actor: ContextVar[str | None] = ContextVar("cellops_actor", default=None)


def current_user() -> str:
    """The user registry and governance actions are recorded as."""
    acting = _actor.get()
    if acting:
        return acting
    named = os.environ.get(ENV_USER)
    if named:
        return named
    from .tracking.context import process_info

    return str(process_info()["user"])


@contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Act as ``user`` inside the block (what the Jupyter server does per request)."""
    if not isinstance(user, str) or not user.strip():
        raise InvalidArgumentError(f"A user must be a non-empty string, not {user!r}.")
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


# -- roles in a shared workspace -------------------------------------------------------------
#
# A workspace with no roles granted is open: everyone who can reach it may do anything (a
# one-person workspace, as before roles existed). Once an admin grants the first role,
# writes through cellops's API (the notebook API, the CLI and the Jupyter server all go
# through it) check the acting user's role; someone with no role granted is a viewer.
# The database is the boundary that holds against code that bypasses cellops: see
# docs/team.md for PostgreSQL roles that enforce the same split.

ROLES = ("viewer", "editor", "approver", "admin")
_LEVEL = {role: i for i, role in enumerate(ROLES)}
DEFAULT_ROLE = "viewer"
_CACHE_S = 5.0  # how long a process trusts what it read about roles
# By workspace object, weakly: an id() could be reused by a workspace opened after another
# was closed, which would then read the other's roles for up to _CACHE_S.
_cache: weakref.WeakKeyDictionary[Any, tuple[float, bool, dict[str, str]]] = \
    weakref.WeakKeyDictionary()


def _roles_of(ws: Any) -> tuple[bool, dict[str, str]]:
    import time

    now = time.monotonic()
    hit = _cache.get(ws)
    if hit is not None and now - hit[0] < _CACHE_S:
        return hit[1], hit[2]
    rows = ws.store.roles.all()
    found = (bool(rows), {r["member"]: r["role"] for r in rows})
    _cache[ws] = (now, *found)
    return found


def role_of(user: str | None = None, *, workspace: Any = None) -> str:
    """The role ``user`` (default: the acting user) holds in the workspace: ``admin`` for
    everyone while no role is granted, ``viewer`` for someone not granted one."""
    from .workspaces import workspace as _workspace

    ws = _workspace(workspace)
    enforced, roles = _roles_of(ws)
    if not enforced:
        return "admin"
    return roles.get(user or current_user(), DEFAULT_ROLE)


def require_role(needed: str, action: str, *, workspace: Any = None) -> None:
    """Refuse ``action`` unless the acting user holds ``needed`` or a higher role."""
    from .errors import GovernanceError

    have = role_of(workspace=workspace)
    if _LEVEL[have] < _LEVEL[needed]:
        user = current_user()
        raise GovernanceError(
            f"{user} is {'an' if have[0] in 'aeiou' else 'a'} {have} in this workspace; "
            f"{action} needs {needed} or higher. An admin can grant it: "
            f"`cellops roles grant {user} {needed}`.")


def _check_role_name(role: str) -> str:
    if role not in _LEVEL:
        raise InvalidArgumentError(f"Unknown role {role!r}; roles are {', '.join(ROLES)} "
                                   "(each includes the ones before it).")
    return role


def grant_role(user: str, role: str) -> dict[str, Any]:
    """Give ``user`` a role in the current workspace (admins only, once roles exist). The
    first grant must make the acting user an admin, so that someone can manage roles."""
    from .errors import GovernanceError
    from .workspaces import workspace as _workspace

    _check_role_name(role)
    if not isinstance(user, str) or not user.strip():
        raise InvalidArgumentError(f"A user must be a non-empty name, not {user!r}.")
    ws = _workspace()
    actor = current_user()
    _cache.pop(ws, None)
    with ws.store.transaction() as tx:
        if not tx.roles.any():
            if not (user == actor and role == "admin"):
                raise GovernanceError(
                    "No roles are granted in this workspace yet, so the first grant must make "
                    f"you an admin (or nobody could manage roles): `cellops roles grant {actor} "
                    "admin`, then grant the others.")
        else:
            require_role("admin", "granting roles", workspace=ws)
        before = tx.roles.grant(user, role, actor)
        tx.audit.append(actor, "grant_role", f"user:{user}", {"before": before, "after": role})
    _cache.pop(ws, None)
    return {"user": user, "role": role, "before": before}


def revoke_role(user: str) -> dict[str, Any]:
    """Take ``user``'s role away (admins only). The last admin cannot be removed while
    others hold roles."""
    from .errors import GovernanceError
    from .workspaces import workspace as _workspace

    ws = _workspace()
    actor = current_user()
    _cache.pop(ws, None)
    require_role("admin", "revoking roles", workspace=ws)
    with ws.store.transaction() as tx:
        current = tx.roles.role_of(user)
        if current is None:
            raise InvalidArgumentError(f"{user} holds no role in this workspace. List them with "
                                       "`cellops roles list`.")
        others = [r for r in tx.roles.all() if r["member"] != user]
        if current == "admin" and others and not any(r["role"] == "admin" for r in others):
            raise GovernanceError(
                f"{user} is the last admin; grant someone else admin first, or nobody could "
                "manage roles.")
        tx.roles.revoke(user)
        tx.audit.append(actor, "revoke_role", f"user:{user}", {"before": current, "after": None})
    _cache.pop(ws, None)
    return {"user": user, "before": current}


def workspace_roles() -> list[dict[str, Any]]:
    """Every granted role: user, role, granted_by, granted_at."""
    from .workspaces import workspace as _workspace

    return [{"user": r["member"], "role": r["role"], "granted_by": r["granted_by"],
             "granted_at": r["granted_at"]} for r in _workspace().store.roles.all()]
