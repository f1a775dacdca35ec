"""Batched metric writes: the workspace's :class:`~cellops.store.batch.BatchWriter` for metrics.

``log_metric`` appends to an in-memory list; the list is written in one
transaction when it reaches ``metric_flush_rows`` (config, default 5,000),
``metric_flush_seconds`` (default 2) after its first row, when a run ends (its rows,
in the same transaction as its status), on ``cellops.flush()``, before any read from
this process, and at interpreter exit. A training loop can log every step at the
cost of a list append. What happens when a write fails is described in
:mod:`cellops.store.batch`: other runs keep their points, and nothing is dropped
without a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError, RunStateError
from ..store.batch import BatchWriter, Dropped, dropped_report, final_flush, flush_all

if TYPE_CHECKING:
    from ..workspaces import Workspace

__all__ = ["dropped_report", "final_flush", "flush_all", "metric_writer"]


def _refuse(run_id: str, failure: Dropped) -> Exception:
    return RunStateError(
        f"Run {run_id[:8]} can take no more logging from this process: {failure.count} metric "
        f"point(s) logged to it could not be stored ({failure.cause}) and were dropped. "
        "Start a new run with cellops.start_run()."
    )


def _setting(ws: Workspace, name: str, default: float, cast: type) -> float:
    value = ws.config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidArgumentError(
            f"{name} in {ws.path / 'config.json'} must be a positive number, not {value!r}.")
    return cast(value)


def metric_writer(ws: Workspace) -> BatchWriter:
    """The batched writer of metric points for ``ws`` (one per workspace and process)."""
    return BatchWriter(
        ws.store.metrics.write,
        what="metric point(s)",
        refuse=_refuse,
        max_rows=int(_setting(ws, "metric_flush_rows", 5000, int)),
        max_age_s=_setting(ws, "metric_flush_seconds", 2.0, float),
        name="cellops-metric-flush",
    )
