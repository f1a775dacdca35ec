"""The scoring server: MLflow's scoring protocol and the Open Inference Protocol v2 from one
process, on Starlette and uvicorn.

Routes (see docs/serving.md):

    GET  /ping, /health                  200 once the model is loaded (no token needed)
    GET  /version                        the cellops version
    POST /invocations                    MLflow scoring protocol (JSON or CSV)
    GET  /metrics                        Prometheus text format
    GET  /v2                             OIP server metadata
    GET  /v2/health/live, /v2/health/ready   (no token needed)
    GET  /v2/models/{name}[/versions/{v}]            model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer      OIP inference

Why Starlette on uvicorn: an ASGI stack with no per-request framework work beyond routing
(no validation layer, no dependency injection), uvicorn's httptools parser and uvloop, and
graceful shutdown on SIGTERM built in; ``benchmarks/bench_serving.py`` has the figures.
A request never touches the database: the model is in memory, the prediction log is a
queue drained by a thread, and the alias is watched by another.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import cellops
from cellops.errors import InvalidArgumentError
from cellops.serving import (
    EndpointBeacon,
    ModelHolder,
    PayloadError,
    PredictionLog,
    ServedModel,
    mlflow_inputs,
    new_request_id,
    oip_datatype,
    oip_inputs,
    oip_outputs,
    quiet_feature_names,
)

__all__ = ["ServeConfig", "Server", "create_app", "serve"]

CONFIG_ENV = "CELLOPS_SERVE_CONFIG"  # how `--workers N` hands the settings to each worker
OPEN_PATHS = frozenset({"/ping", "/health", "/v2/health/live", "/v2/health/ready"})
INLINE_ROWS = 64  # up to this many rows are predicted on the event loop; more in a thread
_access = logging.getLogger("cellops.serving.access")
_log = logging.getLogger("cellops.serving")


@dataclass
class ServeConfig:
    """What ``cellops serve`` and :func:`serve` take."""

    uri: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    log: bool = True
    token: str | None = None
    max_body_bytes: int = 64 * 2**20
    poll_s: float = 2.0
    access_log: bool = True
    workspace: str | None = None
    trusted: tuple[str, ...] = ()
    max_pending: int = 10_000
    announce: bool = True  # register in the workspace for the sidebar

    @property
    def url(self) -> str:
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"


# -- the app's state -------------------------------------------------------------------------

class _State:
    def __init__(self, config: ServeConfig, holder: ModelHolder | None) -> None:
        self.config = config
        self.holder = holder
        self.log: PredictionLog | None = None
        self.beacon: EndpointBeacon | None = None
        self.requests = 0
        self.rows = 0
        self.ready = False
        self.metrics = _Metrics(self)

    def start(self) -> None:
        ws = cellops.workspace(self.config.workspace) if self.config.workspace else cellops.workspace()
        with cellops.use_workspace(ws):
            if self.holder is None:
                self.holder = ModelHolder(self.config.uri, poll_s=self.config.poll_s,
                                          trusted=self.config.trusted)
            self.holder.start()
            if self.config.log:
                self.log = PredictionLog(ws, max_pending=self.config.max_pending)
            if self.config.announce:
                self.beacon = EndpointBeacon(
                    ws, model=self.holder.current.name, uri=self.config.uri, url=self.config.url,
                    status=lambda: (self.holder.current.version, self.requests))
                beacon = self.beacon
                self.holder.on_swap = lambda old, new: beacon.beat()  # the sidebar sees it now
        self.ready = True

    def stop(self) -> None:
        self.ready = False
        if self.holder is not None:
            self.holder.stop()
        if self.log is not None:
            if not self.log.close(timeout=30):
                _log.warning("cellops: %d prediction log entries could not be written before "
                             "shutdown", self.log.depth)
        if self.beacon is not None:
            self.beacon.stop()


class _Metrics:
    def __init__(self, state: _State) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("cellops_serving_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "cellops_serving_request_duration_seconds", "Time to answer a request, by route",
            ["route"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.rows = Counter("cellops_serving_predicted_rows", "Rows predicted",
                            registry=self.registry)
        version = Gauge("cellops_serving_model_version", "The registered version being served",
                        ["model"], registry=self.registry)
        self._version = version
        depth = Gauge("cellops_serving_prediction_log_queue_depth",
                      "Prediction log entries not yet in the database", registry=self.registry)
        depth.set_function(lambda: state.log.depth if state.log is not None else 0)
        self.registry.register(_Counters(state))
        self.state = state

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        holder = self.state.holder
        if holder is not None:
            self._version.labels(holder.current.name).set(holder.current.version or 0)
        return generate_latest(self.registry)


class _Counters:
    """Counters kept elsewhere (the log's drops, the holder's swaps), read when scraped."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        log, holder = self.state.log, self.state.holder
        yield CounterMetricFamily("cellops_serving_prediction_log_dropped",
                                  "Prediction log entries dropped because the database was behind",
                                  value=log.dropped if log is not None else 0)
        yield CounterMetricFamily("cellops_serving_model_swaps",
                                  "Times the followed alias moved and a new version was swapped in",
                                  value=holder.swaps if holder is not None else 0)


# -- middleware: token, metrics, access log --------------------------------------------------

class _Guard:
    """Pure ASGI middleware (no per-request objects beyond a closure)."""

    def __init__(self, app: Any, state: _State) -> None:
        self.app = app
        self.state = state
        token = state.config.token
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope["path"]

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if self.expected is not None and path not in OPEN_PATHS and not self._authorised(scope):
            await _reply(sending, 401, {"error_code": "UNAUTHENTICATED", "message":
                                        "This server needs a token: send Authorization: Bearer "
                                        "TOKEN."}, extra=[(b"www-authenticate", b"Bearer")])
        else:
            try:
                await self.app(scope, receive, sending)
            except Exception:  # noqa: BLE001 - answered and logged, never a dropped connection
                _log.exception("cellops: %s failed", path)
                await _reply(sending, 500, {"error_code": "INTERNAL_ERROR",
                                            "message": "The server failed; its log has the details."})
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics = self.state.metrics
        metrics.requests.labels(template, str(status)).inc()
        metrics.latency.labels(template).observe(elapsed)
        if self.state.config.access_log and _access.isEnabledFor(logging.INFO):
            info = scope.get("state") or {}
            client = scope.get("client")
            _access.info(json.dumps({
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "client": f"{client[0]}:{client[1]}" if client else None,
                "method": scope["method"], "path": path, "status": status,
                "ms": round(elapsed * 1000, 3), "request_id": info.get("request_id"),
                "model": info.get("model"), "version": info.get("version"),
                "rows": info.get("rows")}))

    def _authorised(self, scope: dict[str, Any]) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                return hmac.compare_digest(value, self.expected)  # type: ignore[arg-type]
        return False


async def _reply(send: Any, status: int, body: dict[str, Any],
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


# -- handlers --------------------------------------------------------------------------------

def _state(request: Request) -> _State:
    return request.app.state.cellops


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return new_request_id()


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadError(f"The body is {int(declared):,} bytes; this server takes at most "
                           f"{limit:,} (--max-body-mb). Send fewer rows per request.", 413)
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(f"The body is over {limit:,} bytes, this server's limit "
                               "(--max-body-mb). Send fewer rows per request.", 413)
        parts.append(chunk)
    return b"".join(parts)


async def _predict(model: ServedModel, inputs: Any, method: str) -> Any:
    if inputs.n_rows <= INLINE_ROWS:
        return model.predict(inputs, method)
    return await run_in_threadpool(model.predict, inputs, method)


def _record(state: _State, request: Request, rid: str, model: ServedModel, inputs: Any,
            outputs: Any, started: float, status: int, error: str | None) -> None:
    rows = inputs.n_rows if inputs is not None and outputs is not None else 0
    request.state.request_id, request.state.model = rid, model.name
    request.state.version, request.state.rows = model.version, rows
    state.requests += 1
    if status == 200:
        state.rows += rows
        state.metrics.rows.inc(rows)
    if state.log is not None:
        state.log.record(state.log.entry(
            request_id=rid, model=model.name, version=model.version, source="http",
            inputs=inputs, outputs=outputs if status == 200 else None,
            latency_ms=(time.perf_counter() - started) * 1000, status=status, error=error))


async def invocations(request: Request) -> Response:
    state = _state(request)
    started = time.perf_counter()
    rid = _request_id(request)
    model = state.holder.current  # one version answers the whole request
    inputs = result = None
    try:
        body = await _body(request, state.config.max_body_bytes)
        inputs, params = mlflow_inputs(body, request.headers.get("content-type", ""),
                                       model.signature)
        method = params.get("predict_method", "predict")
        result = await _predict(model, inputs, method)
        status, reply, error = 200, {"predictions": result.tolist()}, None
    except PayloadError as exc:
        status, error = exc.status, str(exc)
        reply = {"error_code": "BAD_REQUEST", "message": error}
    except Exception as exc:  # noqa: BLE001 - the model failed: 500, logged, server goes on
        _log.exception("cellops: the model failed on request %s", rid)
        status, error = 500, f"{type(exc).__name__}: {exc}"
        reply = {"error_code": "INTERNAL_ERROR", "message": f"The model failed: {error}"}
    _record(state, request, rid, model, inputs, result, started, status, error)
    return _json(reply, status, {"X-Request-ID": rid, "X-Model-Version": str(model.version)})


async def ping(request: Request) -> Response:
    ok = _state(request).ready
    return Response("\n" if ok else "loading\n", status_code=200 if ok else 503,
                    media_type="text/plain")


async def version(request: Request) -> Response:
    return Response(cellops.__version__, media_type="text/plain")


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


# -- Open Inference Protocol v2 --------------------------------------------------------------

def _oip_model(request: Request) -> ServedModel:
    model = _state(request).holder.current
    name = request.path_params["name"]
    wanted = request.path_params.get("version")
    if name != model.name or (wanted is not None and wanted != str(model.version)):
        asked = f"{name}" + (f" version {wanted}" if wanted is not None else "")
        raise PayloadError(f"Model {asked} is not served here; this server serves {model.name} "
                           f"version {model.version}.", 404)
    return model


def _oip_error(exc: PayloadError) -> Response:
    return _json({"error": str(exc)}, exc.status)


async def oip_server(request: Request) -> Response:
    return _json({"name": "cellops", "version": cellops.__version__, "extensions": []})


async def oip_live(request: Request) -> Response:
    return _json({"live": True})


async def oip_ready(request: Request) -> Response:
    ok = _state(request).ready
    return _json({"ready": ok}, 200 if ok else 503)


async def oip_model_ready(request: Request) -> Response:
    try:
        _oip_model(request)
    except PayloadError as exc:
        return _oip_error(exc)
    return _json({"name": request.path_params["name"], "ready": _state(request).ready})


def _dtype_of(dtype: str | None) -> str:
    if dtype is None:
        return "FP64"
    import numpy as np

    try:
        return oip_datatype(np.empty(0, dtype=dtype))
    except TypeError:
        return "BYTES"


async def oip_metadata(request: Request) -> Response:
    try:
        model = _oip_model(request)
    except PayloadError as exc:
        return _oip_error(exc)
    sig = model.signature
    if sig.columns is not None:
        inputs = [{"name": c, "datatype": _dtype_of(d), "shape": [-1]}
                  for c, d in zip(sig.columns, sig.dtypes or [None] * len(sig.columns))]
    else:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, sig.width or -1]}]
    classes = getattr(model.estimator, "classes_", None)
    outputs = []
    for m in model.methods:
        if m == "predict":
            kind = _dtype_of(str(classes.dtype)) if classes is not None else "FP64"
            outputs.append({"name": m, "datatype": kind, "shape": [-1]})
        elif m == "decision_function" and classes is not None and len(classes) == 2:
            outputs.append({"name": m, "datatype": "FP64", "shape": [-1]})  # one margin per row
        else:
            outputs.append({"name": m, "datatype": "FP64",
                            "shape": [-1, len(classes) if classes is not None else -1]})
    return _json({"name": model.name, "versions": [str(model.version)] if model.version else [],
                  "platform": "sklearn-skops", "inputs": inputs, "outputs": outputs})


async def oip_infer(request: Request) -> Response:
    state = _state(request)
    started = time.perf_counter()
    rid = _request_id(request)
    model = state.holder.current
    inputs = result = None
    try:
        model = _oip_model(request)
        body = await _body(request, state.config.max_body_bytes)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"The body is not valid JSON: {exc}.") from None
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and 0 < len(doc["id"]) <= 128:
            rid = doc["id"]
        inputs = oip_inputs(doc, model.signature)
        wanted = doc.get("outputs") or [{"name": "predict"}]
        if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                   for o in wanted):
            raise PayloadError("outputs must be a list of {\"name\": ...} objects, e.g. "
                               "[{\"name\": \"predict_proba\"}].")
        results = []
        for out in wanted:
            results.append((out["name"], await _predict(model, inputs, out["name"])))
        result = results[0][1]
        reply = {"model_name": model.name, "model_version": str(model.version), "id": rid,
                 "parameters": {}, "outputs": [oip_outputs(n, r) for n, r in results]}
        status, error = 200, None
    except PayloadError as exc:
        status, error, reply = exc.status, str(exc), {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the model failed
        _log.exception("cellops: the model failed on request %s", rid)
        status, error = 500, f"{type(exc).__name__}: {exc}"
        reply = {"error": f"The model failed: {error}"}
    _record(state, request, rid, model, inputs, result, started, status, error)
    return _json(reply, status, {"X-Request-ID": rid, "X-Model-Version": str(model.version)})


def create_app(config: ServeConfig, holder: ModelHolder | None = None) -> Starlette:
    """The ASGI app for ``config`` (``holder``: a model already loaded, else loaded at
    startup)."""
    from prometheus_client import disable_created_metrics

    quiet_feature_names()
    disable_created_metrics()  # no *_created series: counters and histograms only
    state = _State(config, holder)

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
    app.add_middleware(_Guard, state=state)
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
    _state: _State = field(repr=False)
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
    if access_log and not _access.handlers:
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
        return Server(config.url, config, _State(config, holder), None)
    app = create_app(config, holder)
    state: _State = app.state.cellops
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
    _access.handlers[:] = [handler]
    _access.setLevel(logging.INFO)
    _access.propagate = False
