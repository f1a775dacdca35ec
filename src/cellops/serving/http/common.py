"""What the routes of both protocols share: the app's state, JSON replies, request ids,
reading a bounded body, predicting (large batches in a thread) and recording a request."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cellops.serving import PayloadError, ServedModel, new_request_id

from .config import INLINE_ROWS
from .state import AppState

__all__ = ["json_response", "predict", "read_body", "record", "request_id_of", "state_of"]


def state_of(request: Request) -> AppState:
    return request.app.state.cellops


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def request_id_of(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return new_request_id()


async def read_body(request: Request, limit: int) -> bytes:
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


async def predict(model: ServedModel, inputs: Any, method: str) -> Any:
    if inputs.n_rows <= INLINE_ROWS:
        return model.predict(inputs, method)
    return await run_in_threadpool(model.predict, inputs, method)


def record(state: AppState, request: Request, rid: str, model: ServedModel, inputs: Any,
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
