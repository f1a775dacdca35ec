"""The Jupyter server extension: the workspace over authenticated REST for the sidebar.

It only wires routes to handlers. Each area has one module here (``runs``, ``pipelines``;
``registry``, ``monitoring`` next) listing its ``ROUTES`` under
``{base_url}cellops/api/v1/``; they are found when the extension loads, so a new area adds
a module and edits none. What the handlers return comes from cellops' public API.
Enabled on install through ``jupyter-config/jupyter_server_config.d/cellops.json``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from typing import Any

API = "cellops/api/v1"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cellops.server"}]


def routes() -> list[tuple[str, Any]]:
    """(path under the API, handler class) of every area module."""
    found: list[tuple[str, Any]] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found += getattr(importlib.import_module(f"{__name__}.{module.name}"), "ROUTES", [])
    return found


def setup_handlers(web_app: Any, root_dir: str | None = None) -> None:
    """Add the cellops routes to a Jupyter server's tornado application."""
    from jupyter_server.utils import url_path_join

    base = url_path_join(web_app.settings.get("base_url", "/"), API)
    args = {"root_dir": str(Path(root_dir or os.getcwd()).expanduser().absolute())}
    web_app.add_handlers(".*$", [(url_path_join(base, path) + "/?$", handler, args)
                                 for path, handler in routes()])


def _labextension_dirs() -> list[Path]:
    from jupyter_core.paths import jupyter_path

    return [Path(p) for p in jupyter_path("labextensions")]


def _warn_without_sidebar(warn: Any) -> None:
    """Say once, in the server's log, how to get the sidebar when this install has none
    (a source install on a machine without Node.js)."""
    if not any((d / "cellops" / "package.json").is_file() for d in _labextension_dirs()):
        warn("cellops: the JupyterLab sidebar is not installed (cellops was installed from "
             "source without Node.js). Install Node.js 18+ and reinstall cellops, or install a "
             "cellops wheel, which carries it prebuilt. The REST API works without it.")


def _load_jupyter_server_extension(server_app: Any) -> None:
    from cellops.charts import drop_cached_pictures

    setup_handlers(server_app.web_app, root_dir=getattr(server_app, "root_dir", None))
    # Saved notebooks keep one static copy of a cellops chart (its SVG), not also the PNG
    # plotly's renderer adds to the output after drawing it.
    contents = getattr(server_app, "contents_manager", None)
    if contents is not None and hasattr(contents, "register_pre_save_hook"):
        contents.register_pre_save_hook(drop_cached_pictures)
    server_app.log.info("cellops: REST API at %s%s/",
                        server_app.web_app.settings.get("base_url", "/"), API)
    _warn_without_sidebar(server_app.log.warning)
