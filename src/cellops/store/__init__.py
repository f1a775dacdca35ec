"""Persistence: the only package that speaks SQL.

:class:`Store` is one SQLite connection per process with the queries of every
concept mixed in, one module per concept (``runs``, ``metrics``, ``lineage``,
``search``, ``cells``). The schema and its numbered migrations are in :mod:`.schema`.
"""

from __future__ import annotations

from .cells import CellQueries
from .core import Connection, metric_value_in, metric_value_out, now_ms
from .lineage import LineageQueries
from .metrics import MetricQueries
from .pipelines import PipelineQueries
from .runs import RunQueries
from .search import SearchQueries

__all__ = ["Store", "metric_value_in", "metric_value_out", "now_ms"]


class Store(RunQueries, MetricQueries, LineageQueries, CellQueries, PipelineQueries,
            SearchQueries, Connection):
    """The workspace database. Get it from ``cellops.workspace().store``."""
