"""Persistence: the only package that speaks SQL.

:class:`Store` is the workspace database: one SQLite connection per process
(:class:`~cellops.store.core.Connection`) that hands out one small object per concept,
the way sqlite-utils' ``Database`` hands out ``Table`` objects::

    store.experiments   store.environments   store.runs   store.params   store.tags
    store.metrics       store.artifacts      store.datasets   store.cells
    store.pipelines     store.search     store.registry   store.audit
    store.predictions   store.endpoints   store.monitors   store.features   store.roles

Each owns its SQL and returns plain values. A new area (the registry, the prediction
log, monitors, features) adds a sibling module and attribute. ``with store.transaction()
as tx:`` is the unit of work: the same tables, bound to one transaction (see
:mod:`.core`). The schema and its
numbered migrations are in :mod:`.schema`; batched writes in :mod:`.batch`; what values
SQLite can hold in :mod:`.values`.

A team's workspace keeps the same tables on PostgreSQL: :class:`PgStore` is the same
tables over :class:`~cellops.store.postgres.PgConnection`, and :func:`open_store` picks
the engine from the workspace's store URL. What the two dialects spell differently is in
:mod:`.dialect`.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from .artifacts import ArtifactTable
from .cells import CellTable
from .core import Connection, now_ms
from .datasets import DatasetTable
from .experiments import EnvironmentTable, ExperimentTable
from .features import FeatureTable
from .metrics import MetricTable
from .monitors import MonitorTable
from .pipelines import PipelineTable
from .predictions import EndpointTable, PredictionTable
from .registry import AuditTable, RegistryTable
from .roles import RoleTable
from .runs import ParamTable, RunTable, TagTable
from .search import RunSearch

__all__ = ["PgStore", "Store", "Transaction", "now_ms", "open_store"]


class Tables:
    """The per-concept tables over one connection (the store's, or a transaction's)."""

    def __init__(self, db: Any) -> None:
        self.experiments = ExperimentTable(db)
        self.environments = EnvironmentTable(db)
        self.runs = RunTable(db)
        self.params = ParamTable(db)
        self.tags = TagTable(db)
        self.metrics = MetricTable(db)
        self.artifacts = ArtifactTable(db)
        self.datasets = DatasetTable(db)
        self.cells = CellTable(db)
        self.pipelines = PipelineTable(db)
        self.search = RunSearch(db)
        self.registry = RegistryTable(db)
        self.audit = AuditTable(db)
        self.predictions = PredictionTable(db)
        self.endpoints = EndpointTable(db)
        self.monitors = MonitorTable(db)
        self.features = FeatureTable(db)
        self.roles = RoleTable(db)


class Transaction(Tables):
    """A unit of work: the store's tables bound to one open transaction (``tx.runs``,
    ``tx.registry``, ``tx.audit``, ...). Get one from :meth:`Store.transaction`.

    On SQLite the binding is the thread: every write the thread holding the transaction
    makes joins it, so the tables are the store's own (nothing is built per transaction).
    """

    def __init__(self, tables: Tables) -> None:  # noqa: D107 - the store's tables, shared
        self.__dict__.update({k: v for k, v in vars(tables).items() if k in _TABLE_NAMES})


_TABLE_NAMES = frozenset(vars(Tables(None)))


class _UnitOfWork:
    @contextmanager
    def transaction(self, *, serialize: bool = True) -> Iterator[Transaction]:
        """``with store.transaction() as tx:`` — the tables of ``tx`` read and write inside
        one transaction, committed when the block ends and rolled back if it raises, so a
        rule checked in the block holds for the writes that follow it. The write lock is
        taken at the start: keep the block short (no I/O but the database's).

        ``serialize=False`` is for a block that checks no rule, only writes rows together
        (creating a run): on PostgreSQL it then does not wait for other units of work."""
        with self.bound(serialize):
            yield Transaction(self)


class Store(_UnitOfWork, Connection, Tables):
    """The workspace database (SQLite). Get it from ``cellops.workspace().store``."""

    dialect = "sqlite"

    def __init__(self, path: Path, **kwargs: Any) -> None:
        Connection.__init__(self, path, **kwargs)
        Tables.__init__(self, self)


@lru_cache(maxsize=None)
def _pg_store() -> type:
    from .postgres import PgConnection

    class PgStore(_UnitOfWork, PgConnection, Tables):
        """The workspace database on PostgreSQL: the same tables, the same unit of work."""

        def __init__(self, url: str, **kwargs: Any) -> None:
            PgConnection.__init__(self, url, **kwargs)
            Tables.__init__(self, self)

    return PgStore


def __getattr__(name: str) -> Any:
    if name == "PgStore":  # psycopg is imported only by a workspace that uses it
        return _pg_store()
    raise AttributeError(name)


def open_store(target: str | Path, **kwargs: Any) -> Any:
    """The store for ``target``: a SQLite file path, or a ``postgresql://`` URL."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return _pg_store()(text, **kwargs)
    if "://" in text:
        from ..errors import WorkspaceError

        raise WorkspaceError(f"Unknown store URL {text!r}: use postgresql://user@host:5432/db, "
                             "or leave store_url unset for the embedded SQLite file.")
    return Store(Path(text), **kwargs)
