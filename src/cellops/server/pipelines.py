"""REST routes of the pipelines area.

    GET  pipelines?limit=&offset=                   pipeline runs with their steps
"""

from __future__ import annotations

from .base import Handler, web


class PipelinesHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        ws = self.workspace()
        from cellops.pipelines import pipeline_runs

        page = await self.call(pipeline_runs, self.int_arg("limit", 20, 1, 200),
                               self.int_arg("offset", 0, 0, 10**12), workspace=ws)
        self.reply({"pipelines": page.runs, "total": page.total, "limit": page.limit,
                    "offset": page.offset})


ROUTES = [("pipelines", PipelinesHandler)]
