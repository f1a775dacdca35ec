"""REST routes of explanations and fairness.

    GET  insight/versions    each model version whose run logged an explanation or a
                             fairness report: its top features and its fairness gaps
"""

from __future__ import annotations

from typing import Any

from cellops.insight import DEFINITIONS, version_insights

from .base import Handler, web


def _versions() -> dict[str, Any]:
    return {"versions": version_insights(), "definitions": DEFINITIONS}


class InsightVersionsHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.workspace()
        self.reply(await self.call(_versions))


ROUTES = [("insight/versions", InsightVersionsHandler)]
