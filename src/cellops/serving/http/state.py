"""What a scoring server's app holds while it runs: the model (followed through its alias),
the prediction log, the beacon that announces it in the workspace, and its counts."""

from __future__ import annotations

import cellops
from cellops.serving import EndpointBeacon, ModelHolder, PredictionLog

from .config import LOG, ServeConfig
from .metrics import ServerMetrics

__all__ = ["AppState"]


class AppState:
    """The app's state (``app.state.cellops``); started and stopped by its lifespan."""

    def __init__(self, config: ServeConfig, holder: ModelHolder | None) -> None:
        self.config = config
        self.holder = holder
        self.log: PredictionLog | None = None
        self.beacon: EndpointBeacon | None = None
        self.requests = 0
        self.rows = 0
        self.ready = False
        self.metrics = ServerMetrics(self)

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
                LOG.warning("cellops: %d prediction log entries could not be written before "
                             "shutdown", self.log.depth)
        if self.beacon is not None:
            self.beacon.stop()
