"""Scoring servers announce themselves in the workspace and beat every few seconds, so that
anyone looking at the workspace (the sidebar, ``cellops servers``) sees which model
versions are being served, where, and how busy they are.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..workspaces import Workspace, use_workspace, workspace

__all__ = ["Endpoint", "EndpointBeacon", "serving_endpoints"]

BEAT_S = 5.0
FRESH_S = 3 * BEAT_S  # an endpoint silent for longer is taken as gone


@dataclass
class Endpoint:
    """A running scoring server (one per worker process)."""

    id: str
    model: str
    version: int | None
    uri: str
    url: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    requests_total: int
    rate: float  # requests per second over the last beat


def serving_endpoints(model: str | None = None) -> list[Endpoint]:
    """The scoring servers of this workspace that are alive (beat in the last 15 s; on this
    host, their process exists), by model and version."""
    rows = workspace().store.endpoints.live(fresh_ms=int(FRESH_S * 1000))
    here = socket.gethostname()
    out = []
    for r in rows:
        if model is not None and r["model"] != model:
            continue
        if r["host"] == here and not _alive(r["pid"]):
            continue
        out.append(Endpoint(r["id"], r["model"], r["version"], r["uri"], r["url"], r["host"],
                            r["pid"], _dt(r["started_at"]), _dt(r["heartbeat_at"]),
                            r["requests_total"] or 0, r["rate"] or 0.0))
    return out


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EndpointBeacon:
    """Registers this server and beats until stopped."""

    def __init__(self, ws: Workspace, *, model: str, uri: str, url: str,
                 status: Callable[[], tuple[int | None, int]]) -> None:
        self.workspace = ws
        self.id = uuid.uuid4().hex
        self.status = status  # () -> (version served, requests so far)
        self._stop = threading.Event()
        self._last = (time.monotonic(), 0)
        version, _ = status()
        ws.store.endpoints.register({"id": self.id, "model": model, "version": version, "uri": uri,
                                     "url": url, "host": socket.gethostname(), "pid": os.getpid()})
        self._thread = threading.Thread(target=self._run, daemon=True, name="cellops-endpoint-beat")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(BEAT_S):
            self.beat()

    def beat(self) -> None:
        try:
            version, total = self.status()
            now = time.monotonic()
            then, before = self._last
            rate = (total - before) / (now - then) if now > then else 0.0
            self._last = (now, total)
            with use_workspace(self.workspace):
                self.workspace.store.endpoints.beat(self.id, version=version,
                                                    requests_total=total, rate=round(rate, 3))
        except Exception:  # noqa: BLE001 - a missed beat is not worth a failed server
            pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.workspace.store.endpoints.stop(self.id)
        except Exception:  # noqa: BLE001 - shutting down regardless
            pass

    def describe(self) -> dict[str, Any]:
        return {"id": self.id}
