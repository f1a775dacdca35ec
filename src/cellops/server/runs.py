"""REST routes of the tracking area: the workspace, experiments, runs, artifacts.

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
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cellops

from .base import RUN_ID, Handler, web

EXPORT_DIR = "cellops-notebooks"  # under the server root: where opened notebooks are copied


class WorkspaceHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        found = self.found()
        self.reply({"path": str(found) if found else None, "exists": found is not None,
                    "root_dir": self.root_dir, "version": cellops.__version__})


class ExperimentsHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        ws = self.workspace()
        exps = await self.call(cellops.list_experiments, workspace=ws)
        self.reply({"experiments": [
            {"id": e.id, "name": e.name, "created_at": e.created_at, "description": e.description,
             "run_count": e.run_count, "last_run_time": e.last_run_time} for e in exps]})


class RunsHandler(Handler):
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


class RunHandler(Handler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        ws = self.workspace()
        max_points = self.int_arg("max_points", 500, 2, 100_000)

        def detail() -> dict[str, Any]:
            return cellops.get_run(run_id, workspace=ws).to_dict(details=True, max_points=max_points)

        self.reply(await self.call(detail))


class ArtifactHandler(Handler):
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


ROUTES = [
    ("workspace", WorkspaceHandler),
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    (f"runs/{RUN_ID}", RunHandler),
    (f"runs/{RUN_ID}/artifacts/(?P<path>.+)", ArtifactHandler),
]
