"""The Open Inference Protocol v2 (KServe, Seldon MLServer, Triton clients): server and
model metadata, health, and ``POST /v2/models/{name}[/versions/{v}]/infer``."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import cellops
from cellops.serving import (
    PayloadError,
    ServedModel,
    oip_datatype,
    oip_inputs,
    oip_outputs,
    parse_json,
)

from .common import json_response, predict, read_body, record, request_id_of, state_of
from .config import LOG

__all__ = ["oip_infer", "oip_live", "oip_metadata", "oip_model_ready", "oip_ready", "oip_server"]


def _oip_model(request: Request) -> ServedModel:
    model = state_of(request).holder.current
    name = request.path_params["name"]
    wanted = request.path_params.get("version")
    if name != model.name or (wanted is not None and wanted != str(model.version)):
        asked = f"{name}" + (f" version {wanted}" if wanted is not None else "")
        raise PayloadError(f"Model {asked} is not served here; this server serves {model.name} "
                           f"version {model.version}.", 404)
    return model


def _oip_error(exc: PayloadError) -> Response:
    return json_response({"error": str(exc)}, exc.status)


async def oip_server(request: Request) -> Response:
    return json_response({"name": "cellops", "version": cellops.__version__, "extensions": []})


async def oip_live(request: Request) -> Response:
    return json_response({"live": True})


async def oip_ready(request: Request) -> Response:
    ok = state_of(request).ready
    return json_response({"ready": ok}, 200 if ok else 503)


async def oip_model_ready(request: Request) -> Response:
    try:
        _oip_model(request)
    except PayloadError as exc:
        return _oip_error(exc)
    return json_response({"name": request.path_params["name"], "ready": state_of(request).ready})


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
    return json_response({"name": model.name, "versions": [str(model.version)] if model.version else [],
                  "platform": "sklearn-skops", "inputs": inputs, "outputs": outputs})


async def oip_infer(request: Request) -> Response:
    state = state_of(request)
    started = time.perf_counter()
    rid = request_id_of(request)
    model = state.holder.current
    inputs = result = None
    try:
        model = _oip_model(request)
        body = await read_body(request, state.config.max_body_bytes)
        doc = await run_in_threadpool(parse_json, body)  # off the event loop, like /invocations
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and 0 < len(doc["id"]) <= 128:
            rid = doc["id"]
        inputs = await run_in_threadpool(model.parse, oip_inputs, doc)
        wanted = doc.get("outputs") or [{"name": "predict"}]
        if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                   for o in wanted):
            raise PayloadError("outputs must be a list of {\"name\": ...} objects, e.g. "
                               "[{\"name\": \"predict_proba\"}].")
        results = []
        for out in wanted:
            results.append((out["name"], await predict(model, inputs, out["name"])))
        result = results[0][1]
        reply = {"model_name": model.name, "model_version": str(model.version), "id": rid,
                 "parameters": {}, "outputs": [oip_outputs(n, r) for n, r in results]}
        status, error = 200, None
    except PayloadError as exc:
        status, error, reply = exc.status, str(exc), {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the model failed
        LOG.exception("cellops: the model failed on request %s", rid)
        status, error = 500, f"{type(exc).__name__}: {exc}"
        reply = {"error": f"The model failed: {error}"}
    record(state, request, rid, model, inputs, result, started, status, error)
    return json_response(reply, status, {"X-Request-ID": rid, "X-Model-Version": str(model.version)})
