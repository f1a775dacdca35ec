"""REST routes of the serving area.

    GET  serving                                    running scoring servers of the workspace,
                                                    with the version each serves and its
                                                    request rate
"""

from __future__ import annotations

from typing import Any

import cellops

from .base import Handler, web


def _endpoints() -> list[dict[str, Any]]:
    return [e.__dict__ for e in cellops.serving_endpoints()]


class ServingHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.workspace()
        self.reply({"endpoints": await self.call(_endpoints)})


ROUTES = [("serving", ServingHandler)]
