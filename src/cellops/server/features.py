"""REST routes of the feature store.

    GET  features              every view's latest version with its online state and the
                               models that use it
    GET  features/NAME         one view: definition, versions, per-feature freshness,
                               online state, models, and its latest rows (?sample=N, 0-100)
    POST features/NAME/materialize   materialize the view as of now (body: {"end": ISO time})
"""

from __future__ import annotations

import json
from typing import Any

import cellops
from cellops.features import feature_view_status

from .base import Handler, web

NAME = r"([A-Za-z_][A-Za-z0-9_.-]{0,99})"


def _overview() -> dict[str, Any]:
    views = []
    for view in cellops.list_feature_views():
        status = feature_view_status(view.name)
        views.append({**status["view"], "versions": len(status["versions"]),
                      "online": status["online"], "models": status["models"],
                      "freshness": status["freshness"]})
    return {"views": views}


def _view(name: str, sample: int) -> dict[str, Any]:
    status = feature_view_status(name)
    rows = cellops.get_feature_view(name).to_frame().tail(sample)
    return {**status, "sample": {"columns": [str(c) for c in rows.columns],
                                 "rows": json.loads(rows.to_json(orient="values", date_format="iso"))}}


def _materialize(name: str, end: str | None) -> dict[str, Any]:
    (done,) = cellops.materialize(name, end=end)
    return {"view": done.view, "version": done.version, "end": done.end.isoformat(),
            "rows_written": done.rows_written, "rows_expired": done.rows_expired,
            "incremental": done.incremental}


class FeaturesHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.workspace()
        self.reply(await self.call(_overview))


class FeatureViewHandler(Handler):
    @web.authenticated
    async def get(self, name: str) -> None:
        sample = self.int_arg("sample", 10, 0, 100)
        self.workspace()
        self.reply(await self.call(_view, name, sample))


class MaterializeHandler(Handler):
    @web.authenticated
    async def post(self, name: str) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
            end = body.get("end") if isinstance(body, dict) else None
        except ValueError:
            raise web.HTTPError(400, log_message='The body must be JSON, e.g. {"end": '
                                '"2024-01-01T00:00:00Z"} or {}.', reason="bad body") from None
        if end is not None and not isinstance(end, str):
            raise web.HTTPError(400, log_message="'end' must be an ISO 8601 time.", reason="bad body")
        self.workspace()
        self.reply(await self.call(_materialize, name, end))


ROUTES = [("features", FeaturesHandler),
          (rf"features/{NAME}", FeatureViewHandler),
          (rf"features/{NAME}/materialize", MaterializeHandler)]
