"""MLflow's scoring protocol: ``POST /invocations`` (JSON or CSV), ``GET /ping``,
``/health`` and ``/version``, as ``mlflow models serve`` answers them."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import cellops
from cellops.serving import PayloadError, mlflow_inputs

from .common import json_response, predict, read_body, record, request_id_of, state_of
from .config import LOG

__all__ = ["invocations", "ping", "version"]


async def invocations(request: Request) -> Response:
    state = state_of(request)
    started = time.perf_counter()
    rid = request_id_of(request)
    model = state.holder.current  # one version answers the whole request
    inputs = result = None
    try:
        body = await read_body(request, state.config.max_body_bytes)
        # Parsed in a worker thread: a large or hostile body never holds up /ping and the
        # other clients on the event loop.
        inputs, params = await run_in_threadpool(
            model.parse, mlflow_inputs, body, request.headers.get("content-type", ""))
        method = params.get("predict_method", "predict")
        result = await predict(model, inputs, method)
        status, reply, error = 200, {"predictions": result.tolist()}, None
    except PayloadError as exc:
        status, error = exc.status, str(exc)
        reply = {"error_code": "BAD_REQUEST", "message": error}
    except Exception as exc:  # noqa: BLE001 - the model failed: 500, logged, server goes on
        LOG.exception("cellops: the model failed on request %s", rid)
        status, error = 500, f"{type(exc).__name__}: {exc}"
        reply = {"error_code": "INTERNAL_ERROR", "message": f"The model failed: {error}"}
    record(state, request, rid, model, inputs, result, started, status, error)
    return json_response(reply, status, {"X-Request-ID": rid, "X-Model-Version": str(model.version)})


async def ping(request: Request) -> Response:
    ok = state_of(request).ready
    return Response("\n" if ok else "loading\n", status_code=200 if ok else 503,
                    media_type="text/plain")


async def version(request: Request) -> Response:
    return Response(cellops.__version__, media_type="text/plain")
