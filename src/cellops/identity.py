"""Who is acting: what the audit log records and what approvals check (every area's).

The OS user, unless ``CELLOPS_USER`` names another; inside the Jupyter server, the
server's authenticated user (the server wraps each call in :func:`acting_as`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

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
