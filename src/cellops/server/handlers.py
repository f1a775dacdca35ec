"""REST handlers under ``{base_url}cellops/api/v1/``; every one requires Jupyter's authentication.

Routes (see docs/rest-api.md):

    GET  workspace                                  where the workspace is, or that there is none
    GET  experiments                                experiments with run counts
    GET  runs?experiment=&filter=&order_by=&kind=&limit=&offset=     a page of runs
    GET  runs/{run_id}?max_points=                  one run: params, tags, metric histories,
                                                    artifacts, datasets, source
    GET  runs/{run_id}/artifacts/{path}             download an artifact (any name, ``dir/open``
                                                    included)
    POST runs/{run_id}/artifacts/{path}/open        copy a notebook artifact under the server's
                                                    root so JupyterLab can open it (an edited
                                                    copy is never overwritten)
    GET  pipelines?limit=&offset=                   pipeline runs with their steps

Handlers parse the request, call the public API in a worker thread (SQLite work must not
block the server's event loop) and write JSON; cellops errors about the request become 4xx
with a message that says what to do. Other failures are a 500 whose body names the error
class only: the details (file paths included) go to the server log, not to the client.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from urllib.parse import quote
from typing import Any, Callable

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

import cellops
from cellops.errors import InvalidArgumentError, NotFoundError, RunStateError
from cellops.jsonable import to_jsonable
from cellops.workspaces import DB_NAME

_log = logging.getLogger("cellops.server")

API = "cellops/api/v1"
EXPORT_DIR = "cellops-notebooks"  # under the server root: where opened notebooks are copied
# Any id-like segment reaches the API, which says what is wrong (too short, no such run).
_RUN_ID = r"(?P<run_id>[^/]{1,100})"


class NoWorkspace(web.HTTPError):
    def __init__(self, root: str) -> None:
        super().__init__(404, log_message=(
            f"No cellops workspace for {root}. Log a run from a notebook in this folder "
            "(%%track) or run 'cellops init' here, or start Jupyter with CELLOPS_HOME set."),
            reason="no workspace")


class _Handler(APIHandler):
    """Runs the API call off the event loop and maps cellops errors to HTTP errors."""

    root_dir: str = "."

    def initialize(self, root_dir: str) -> None:  # type: ignore[override]
        self.root_dir = root_dir

    def found(self) -> Path | None:
        """The workspace folder for the server's root, if it has a database (never creates one)."""
        found = cellops.find_workspace(self.root_dir)
        return found if found is not None and (found / DB_NAME).exists() else None

    def workspace(self) -> cellops.Workspace:
        found = self.found()
        if found is None:
            raise NoWorkspace(self.root_dir)
        return cellops.workspace(found)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await IOLoop.current().run_in_executor(None, lambda: fn(*args, **kwargs))
        except NotFoundError as exc:
            raise web.HTTPError(404, log_message=str(exc), reason="not found") from None
        except (InvalidArgumentError, RunStateError) as exc:
            raise web.HTTPError(400, log_message=str(exc), reason=type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - no traceback or file path to the client
            _log.error("cellops: %s failed", self.request.path, exc_info=exc)
            raise web.HTTPError(500, log_message=(
                f"The cellops server failed ({type(exc).__name__}); the Jupyter server's log "
                "has the details."), reason="server error") from None

    def reply(self, data: Any) -> None:
        self.finish(json.dumps(to_jsonable(data)))

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


class WorkspaceHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        found = self.found()
        self.reply({"path": str(found) if found else None, "exists": found is not None,
                    "root_dir": self.root_dir, "version": cellops.__version__})


class ExperimentsHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        ws = self.workspace()
        exps = await self.call(cellops.list_experiments, workspace=ws)
        self.reply({"experiments": [
            {"id": e.id, "name": e.name, "created_at": e.created_at, "description": e.description,
             "run_count": e.run_count, "last_run_time": e.last_run_time} for e in exps]})


class RunsHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        ws = self.workspace()
        experiment = self.get_argument("experiment", None) or None
        kinds = [k for k in self.get_arguments("kind") if k] or None
        order = [o for o in self.get_arguments("order_by") if o] or None
        page = await self.call(
            cellops.list_runs, experiment, self.get_argument("filter", None) or None, order,
            kinds=kinds, limit=self.int_arg("limit", 50, 1, 1000),
            offset=self.int_arg("offset", 0, 0, 10**12), workspace=ws)
        self.reply({"runs": page.runs, "total": page.total, "limit": page.limit,
                    "offset": page.offset})


class RunHandler(_Handler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        ws = self.workspace()
        max_points = self.int_arg("max_points", 500, 2, 100_000)

        def detail() -> dict[str, Any]:
            return cellops.get_run(run_id, workspace=ws).to_dict(details=True, max_points=max_points)

        self.reply(await self.call(detail))


class ArtifactHandler(_Handler):
    """GET downloads artifact ``path``; POST to ``path/open`` copies a notebook artifact
    under the server's root for JupyterLab to open. One route for both, so that an artifact
    whose own name ends in ``/open`` still downloads."""

    @web.authenticated
    async def get(self, run_id: str, path: str) -> None:
        ws = self.workspace()

        def read() -> tuple[bytes, str | None]:
            run = cellops.get_run(run_id, workspace=ws)
            media = next((a.get("media_type") for a in run.artifacts if a["path"] == path), None)
            return run.read_artifact(path), media

        data, media = await self.call(read)
        self.set_header("Content-Disposition", _attachment(Path(path).name))
        self.finish(data, set_content_type=media or "application/octet-stream")

    @web.authenticated
    async def post(self, run_id: str, path: str) -> None:
        path, _, action = path.rpartition("/")
        if action != "open" or not path:
            raise web.HTTPError(405, log_message="POST an artifact's /open route, e.g. "
                                                 "artifacts/output.ipynb/open.", reason="not allowed")
        if not path.endswith(".ipynb"):
            raise web.HTTPError(400, log_message=f"Only notebooks can be opened; {path!r} is not "
                                                 "one. Download it instead.", reason="not a notebook")
        ws = self.workspace()

        def export() -> str:
            run = cellops.get_run(run_id, workspace=ws)
            label = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{run.name or 'run'}-{run.short_id}-{Path(path).name}")
            # A copy the user opened and edited stays theirs: reuse it only when unchanged.
            written = run.download_artifact(path, Path(self.root_dir) / EXPORT_DIR / label,
                                            overwrite=False)
            return os.path.relpath(written, self.root_dir).replace(os.sep, "/")

        self.reply({"path": await self.call(export)})


def _attachment(name: str) -> str:
    """A Content-Disposition header for any file name: an ASCII fallback and RFC 5987's
    UTF-8 form (control characters and quotes never reach the header)."""
    fallback = re.sub(r'[^A-Za-z0-9 ._()-]+', "_", name) or "artifact"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class PipelinesHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        ws = self.workspace()
        from cellops.pipelines import pipeline_runs

        page = await self.call(pipeline_runs, self.int_arg("limit", 20, 1, 200),
                               self.int_arg("offset", 0, 0, 10**12), workspace=ws)
        self.reply({"pipelines": page.runs, "total": page.total, "limit": page.limit,
                    "offset": page.offset})


def setup_handlers(web_app: Any, root_dir: str | None = None) -> None:
    """Add the cellops routes to a Jupyter server's tornado application."""
    base = url_path_join(web_app.settings.get("base_url", "/"), API)
    args = {"root_dir": str(Path(root_dir or os.getcwd()).expanduser().absolute())}
    routes = [
        ("workspace", WorkspaceHandler),
        ("experiments", ExperimentsHandler),
        ("runs", RunsHandler),
        (f"runs/{_RUN_ID}", RunHandler),
        (f"runs/{_RUN_ID}/artifacts/(?P<path>.+)", ArtifactHandler),
        ("pipelines", PipelinesHandler),
    ]
    web_app.add_handlers(".*$", [(url_path_join(base, p) + "/?$", h, args) for p, h in routes])
