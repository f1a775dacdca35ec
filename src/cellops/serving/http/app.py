"""Building the scoring server's app and running it: in a background thread of this
process (a notebook goes on), or in the foreground with N worker processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

import cellops
from cellops.errors import InvalidArgumentError
from cellops.serving import ModelHolder, PredictionLog, ServedModel, quiet_feature_names

from .auth import Guard
from .config import ACCESS, CONFIG_ENV, ServeConfig
from .metrics import metrics
from .mlflow import invocations, ping, version
from .oip import (
    oip_infer,
    oip_live,
    oip_metadata,
    oip_model_ready,
    oip_ready,
    oip_server,
)
from .state import AppState

__all__ = ["Server", "app_from_env", "configure_access_log", "create_app", "running_servers",
           "serve"]


def create_app(config: ServeConfig, holder: ModelHolder | None = None) -> Starlette:
    """The ASGI app for ``config`` (``holder``: a model already loaded, else loaded at
    startup)."""
    from prometheus_client import disable_created_metrics

    quiet_feature_names()
    disable_created_metrics()  # no *_created series: counters and histograms only
    state = AppState(config, holder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await run_in_threadpool(state.start)
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v2", oip_server, methods=["GET"]),
        Route("/v2/health/live", oip_live, methods=["GET"]),
        Route("/v2/health/ready", oip_ready, methods=["GET"]),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [Route(base, oip_metadata, methods=["GET"]),
                   Route(base + "/ready", oip_model_ready, methods=["GET"]),
                   Route(base + "/infer", oip_infer, methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.cellops = state
    app.add_middleware(Guard, state=state)
    return app


def app_from_env() -> Starlette:
    """The app a ``--workers N`` worker runs: settings from ``CELLOPS_SERVE_CONFIG``."""
    raw = json.loads(os.environ[CONFIG_ENV])
    raw["trusted"] = tuple(raw.get("trusted") or ())
    return create_app(ServeConfig(**raw))


# -- running it ------------------------------------------------------------------------------

@dataclass
class Server:
    """A scoring server started by :func:`serve`: ``url``, ``stop()``, the ``model`` it
    answers with now, and its prediction ``log``."""

    url: str
    config: ServeConfig
    _state: AppState = field(repr=False)
    _server: Any = field(repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def model(self) -> ServedModel:
        return self._state.holder.current

    @property
    def log(self) -> PredictionLog | None:
        return self._state.log

    @property
    def requests(self) -> int:
        return self._state.requests

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the requests in flight, flush the prediction log, and stop."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def curl(self) -> str:
        """A curl command that scores one row (of zeros) against this server."""
        sig = self.model.signature
        width = sig.width or 1
        columns = list(sig.columns) if sig.columns else None
        payload = {"dataframe_split": {**({"columns": columns} if columns else {}),
                                       "data": [[0.0] * width]}}
        auth = f" -H 'Authorization: Bearer {self.config.token}'" if self.config.token else ""
        body = json.dumps(payload).replace("'", "'\\''")
        return (f"curl -s {self.url}/invocations -H 'Content-Type: application/json'{auth} "
                f"-d '{body}'")

    def __str__(self) -> str:
        m = self.model
        return f"serving {m.name} version {m.version} ({self.config.uri}) at {self.url}"

    def _repr_html_(self) -> str:
        import html

        m = self.model
        state = "running" if self.running else "stopped"
        return (f"<div style='font-family:var(--jp-ui-font-family, sans-serif);font-size:12px'>"
                f"<b>{html.escape(m.name)}</b> version {m.version} ({html.escape(self.config.uri)}) "
                f"{state} at <a href='{html.escape(self.url)}/ping' target='_blank'>"
                f"{html.escape(self.url)}</a><br>"
                f"<pre style='white-space:pre-wrap;margin:4px 0'>{html.escape(self.curl())}</pre>"
                f"<span style='opacity:0.7'>Stop it with <code>.stop()</code> or "
                f"<code>%serve --stop</code>.</span></div>")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"{self}\n{self.curl()}")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidArgumentError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Pick another port "
            "(--port, or 0 for any free one).") from None
    sock.set_inheritable(True)
    return sock


def serve(uri: str, *, host: str = "127.0.0.1", port: int = 0, workers: int = 1,
          log: bool = True, token: str | None = None, poll_interval: float = 2.0,
          max_body_mb: float = 64, access_log: bool = False, trusted: tuple[str, ...] = (),
          block: bool = False, on_ready: Any = None) -> Server:
    """Serve the model at ``uri`` over HTTP (MLflow's scoring protocol and OIP v2).

    By default the server runs in a background thread of this process — in a notebook,
    the kernel goes on — on 127.0.0.1 and a free port; the returned :class:`Server` has
    ``url`` and ``stop()``. With an alias (``models:/NAME@champion``) or ``latest`` the
    server follows it: when it moves, the new version is loaded in the background and
    swapped in without failing a request. ``token`` requires ``Authorization: Bearer``
    on every route but the health checks; ``log=False`` keeps no prediction log.
    ``block=True`` serves in the foreground until SIGTERM or Ctrl-C (what ``cellops
    serve`` does); ``workers`` > 1 needs it. ``access_log`` prints one JSON line per
    request on stderr. ``on_ready(url, model)`` is called once the model is loaded and the
    port bound, before serving starts.
    """
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers must be a positive integer, not {workers!r}.")
    if workers > 1 and not block:
        raise InvalidArgumentError("workers > 1 runs worker processes: use block=True "
                                   "(`cellops serve --workers N`).")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port must be from 0 to 65535, not {port!r}.")
    if not 0 < max_body_mb <= 4096:
        raise InvalidArgumentError(f"max_body_mb must be from 1 to 4096, not {max_body_mb!r}.")
    ws = cellops.workspace()
    holder = ModelHolder(uri, poll_s=poll_interval, trusted=tuple(trusted))  # fails here, clearly
    if access_log and not ACCESS.handlers:
        configure_access_log()
    sock = _bind(host, port)
    config = ServeConfig(uri=uri, host=host, port=sock.getsockname()[1], workers=workers, log=log,
                         token=token, max_body_bytes=int(max_body_mb * 2**20), poll_s=poll_interval,
                         access_log=access_log, workspace=str(ws.path), trusted=tuple(trusted))
    if on_ready is not None:
        on_ready(config.url, holder.current)
    common = dict(log_level="warning", access_log=False, timeout_graceful_shutdown=30,
                  lifespan="on", server_header=False, date_header=False)
    if workers > 1:
        sock.close()
        os.environ[CONFIG_ENV] = json.dumps({**asdict(config), "trusted": list(config.trusted)})
        uvicorn.run("cellops.serving.http:app_from_env", factory=True, host=host,
                    port=config.port, workers=workers, **common)
        return Server(config.url, config, AppState(config, holder), None)
    app = create_app(config, holder)
    state: AppState = app.state.cellops
    server = uvicorn.Server(uvicorn.Config(app, loop="auto" if block else "asyncio", **common))
    handle = Server(config.url, config, state, server)
    if block:
        server.run(sockets=[sock])
        return handle
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"cellops-serve-{config.port}")
    handle._thread = thread
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if errors or not thread.is_alive():
            raise cellops.CellopsError(f"The scoring server did not start: "
                                       f"{errors[0] if errors else 'see the log above'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise cellops.CellopsError("The scoring server did not start within 60 s.")
        time.sleep(0.01)
    _running.append(handle)
    return handle


_running: list[Server] = []


def running_servers() -> list[Server]:
    """Servers :func:`serve` started in this process that are still running."""
    _running[:] = [s for s in _running if s.running]
    return list(_running)


def configure_access_log(stream: Any = None) -> None:
    """Send the access log (one JSON object per request) to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ACCESS.handlers[:] = [handler]
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False
