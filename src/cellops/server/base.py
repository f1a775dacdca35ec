"""What every cellops REST handler shares: authentication, the workspace, errors, JSON.

Handlers parse the request, call the public API in a worker thread (SQLite work must not
block the server's event loop) and write JSON; cellops errors about the request become
4xx with a message that says what to do. Other failures are a 500 whose body names the
error class only: the details (file paths included) go to the server log, not to the
client. Every handler method is ``@web.authenticated``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Callable

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

import cellops
from cellops.errors import (
    GovernanceError,
    InvalidArgumentError,
    ModelStateError,
    NotFoundError,
    RunStateError,
)
from cellops.jsonable import to_jsonable

__all__ = ["Handler", "NoWorkspace", "RUN_ID", "web"]

_log = logging.getLogger("cellops.server")

# Any id-like segment reaches the API, which says what is wrong (too short, no such run).
RUN_ID = r"(?P<run_id>[^/]{1,100})"



_OPAQUE_ID = re.compile(r"[0-9a-f]{32}")


def actor_name(user: Any) -> str:
    """The name an action through Jupyter is recorded as.

    Jupyter's authenticated user's ``name`` (JupyterHub's user name), else its
    ``display_name``, else its ``username``. Jupyter's anonymous user (plain token login:
    an opaque hex ``username`` with a made-up "Anonymous ..." name, new per browser) is
    the person who started the server: ``CELLOPS_USER`` or the OS user, as in a notebook.
    An opaque id is never the only name recorded.
    """
    for attribute in ("name", "display_name", "username"):
        candidate = str(getattr(user, attribute, "") or "").strip()
        if candidate and not _OPAQUE_ID.fullmatch(candidate) and not candidate.startswith("Anonymous "):
            return candidate
    return cellops.current_user()

class NoWorkspace(web.HTTPError):
    def __init__(self, root: str) -> None:
        super().__init__(404, log_message=(
            f"No cellops workspace for {root}. Log a run from a notebook in this folder "
            "(%%track) or run 'cellops init' here, or start Jupyter with CELLOPS_HOME set."),
            reason="no workspace")


class Handler(APIHandler):
    """Runs the API call off the event loop and maps cellops errors to HTTP errors."""

    root_dir: str = "."

    def initialize(self, root_dir: str) -> None:  # type: ignore[override]
        self.root_dir = root_dir

    def found(self) -> Path | None:
        """The workspace folder for the server's root, if it has a database (never creates one)."""
        return cellops.find_workspace(self.root_dir, existing=True)

    def workspace(self) -> cellops.Workspace:
        found = self.found()
        if found is None:
            raise NoWorkspace(self.root_dir)
        self._workspace = cellops.workspace(found)
        return self._workspace

    @property
    def actor(self) -> str:
        """Who is asking, by name (what governance records and checks): see :func:`actor_name`."""
        return actor_name(self.current_user)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` off the event loop as the authenticated user, in the server's workspace."""
        ws = getattr(self, "_workspace", None)
        actor = self.actor

        def run() -> Any:
            with cellops.acting_as(actor):
                if ws is None:
                    return fn(*args, **kwargs)
                with cellops.use_workspace(ws):
                    return fn(*args, **kwargs)

        try:
            return await IOLoop.current().run_in_executor(None, run)
        except NotFoundError as exc:
            raise web.HTTPError(404, log_message=str(exc), reason="not found") from None
        except GovernanceError as exc:
            raise web.HTTPError(403, log_message=str(exc), reason="not allowed") from None
        except ModelStateError as exc:
            raise web.HTTPError(409, log_message=str(exc), reason="conflict") from None
        except (InvalidArgumentError, RunStateError) as exc:
            raise web.HTTPError(400, log_message=str(exc), reason=type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - no traceback or file path to the client
            _log.error("cellops: %s failed", self.request.path, exc_info=exc)
            raise web.HTTPError(500, log_message=(
                f"The cellops server failed ({type(exc).__name__}); the Jupyter server's log "
                "has the details."), reason="server error") from None

    def reply(self, data: Any) -> None:
        self.finish(json.dumps(to_jsonable(data)))

    def comment(self) -> str | None:
        """The optional ``comment`` of a JSON body such as ``{"comment": "ok"}`` (400 otherwise)."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, log_message="The body must be JSON, e.g. {\"comment\": \"ok\"}.",
                                reason="bad body") from None
        comment = body.get("comment") if isinstance(body, dict) else None
        if comment is not None and not isinstance(comment, str):
            raise web.HTTPError(400, log_message="'comment' must be text.", reason="bad body")
        return comment

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise web.HTTPError(400, log_message=f"'{name}' must be an integer from {low} to {high}, "
                                                 f"not {raw!r}.", reason="bad parameter")
        return value
