"""The middleware in front of every route: the bearer token (health checks stay open),
the request metrics and access log, and a 500 for anything a route let through."""

from __future__ import annotations

import hmac
import json
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .config import ACCESS, LOG, OPEN_PATHS

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["Guard", "reply"]


class Guard:
    """Pure ASGI middleware (no per-request objects beyond a closure)."""

    def __init__(self, app: Any, state: AppState) -> None:
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
            await reply(sending, 401, {"error_code": "UNAUTHENTICATED", "message":
                                        "This server needs a token: send Authorization: Bearer "
                                        "TOKEN."}, extra=[(b"www-authenticate", b"Bearer")])
        else:
            try:
                await self.app(scope, receive, sending)
            except Exception:  # noqa: BLE001 - answered and logged, never a dropped connection
                LOG.exception("cellops: %s failed", path)
                await reply(sending, 500, {"error_code": "INTERNAL_ERROR",
                                            "message": "The server failed; its log has the details."})
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics = self.state.metrics
        metrics.requests.labels(template, str(status)).inc()
        metrics.latency.labels(template).observe(elapsed)
        if self.state.config.access_log and ACCESS.isEnabledFor(logging.INFO):
            info = scope.get("state") or {}
            client = scope.get("client")
            ACCESS.info(json.dumps({
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


async def reply(send: Any, status: int, body: dict[str, Any],
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})
