"""The Jupyter server extension: the workspace over authenticated REST for the sidebar.

It only wires routes to handlers (:mod:`cellops.server.handlers`); what they return
comes from cellops' public API. Enabled on install through
``jupyter-config/jupyter_server_config.d/cellops.json``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cellops.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .handlers import setup_handlers

    setup_handlers(server_app.web_app, root_dir=getattr(server_app, "root_dir", None))
    server_app.log.info("cellops: REST API at %scellops/api/v1/",
                        server_app.web_app.settings.get("base_url", "/"))
