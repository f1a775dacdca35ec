"""Persistence: the only package that speaks SQL.

:class:`Store` is the workspace database: one SQLite connection per process
(:class:`~cellops.store.core.Connection`) that hands out one small object per concept,
the way sqlite-utils' ``Database`` hands out ``Table`` objects::

    store.experiments   store.environments   store.runs   store.params   store.tags
    store.metrics       store.artifacts      store.datasets   store.cells
    store.pipelines     store.search     store.registry   store.audit
    store.predictions   store.endpoints   store.monitors

Each owns its SQL and returns plain values. A new area (the registry, the prediction
log, monitors, features) adds a sibling module and attribute. The schema and its
numbered migrations are in :mod:`.schema`; batched writes in :mod:`.batch`; what values
SQLite can hold in :mod:`.values`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifacts import ArtifactTable
from .cells import CellTable
from .core import Connection, now_ms
from .datasets import DatasetTable
from .experiments import EnvironmentTable, ExperimentTable
from .metrics import MetricTable
from .monitors import MonitorTable
from .pipelines import PipelineTable
from .predictions import EndpointTable, PredictionTable
from .registry import AuditTable, RegistryTable
from .runs import ParamTable, RunTable, TagTable
from .search import RunSearch

__all__ = ["Store", "now_ms"]


class Store(Connection):
    """The workspace database. Get it from ``cellops.workspace().store``."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.experiments = ExperimentTable(self)
        self.environments = EnvironmentTable(self)
        self.runs = RunTable(self)
        self.params = ParamTable(self)
        self.tags = TagTable(self)
        self.metrics = MetricTable(self)
        self.artifacts = ArtifactTable(self)
        self.datasets = DatasetTable(self)
        self.cells = CellTable(self)
        self.pipelines = PipelineTable(self)
        self.search = RunSearch(self)
        self.registry = RegistryTable(self)
        self.audit = AuditTable(self)
        self.predictions = PredictionTable(self)
        self.endpoints = EndpointTable(self)
        self.monitors = MonitorTable(self)
