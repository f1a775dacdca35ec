"""What a scoring server is told (``ServeConfig``), its fixed limits, and its loggers."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

__all__ = ["ACCESS", "CONFIG_ENV", "INLINE_ROWS", "LOG", "OPEN_PATHS", "ServeConfig"]

CONFIG_ENV = "CELLOPS_SERVE_CONFIG"  # how `--workers N` hands the settings to each worker
OPEN_PATHS = frozenset({"/ping", "/health", "/v2/health/live", "/v2/health/ready"})
INLINE_ROWS = 64  # up to this many rows are predicted on the event loop; more in a thread
ACCESS = logging.getLogger("cellops.serving.access")
LOG = logging.getLogger("cellops.serving")


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
