"""Prometheus metrics of a scoring server (``GET /metrics``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["ServerMetrics", "metrics"]


class ServerMetrics:
    """Request counts and latencies by route, rows, the served version, the log's queue."""

    def __init__(self, state: AppState) -> None:
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

    def __init__(self, state: AppState) -> None:
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


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.cellops.metrics.render(), media_type=CONTENT_TYPE_LATEST)
