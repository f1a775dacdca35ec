"""Batched metric writes.

``log_metric`` appends to an in-memory list; the list is written in one
transaction when it reaches ``max_rows``, ``max_age_s`` after its first row (one
daemon thread per buffer), on ``end_run`` (in the same transaction as the status change), on
``cellops.flush()``, before any read from this process, and at interpreter exit.
A training loop can log every step at the cost of a list append.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from typing import TYPE_CHECKING

from ..errors import CellopsError

if TYPE_CHECKING:
    from ..store.metrics import MetricRow
    from ..workspaces import Workspace

_all_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    def __init__(self, ws: Workspace, *, max_rows: int = 5000, max_age_s: float = 2.0) -> None:
        self.ws = ws
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._rows: list[MetricRow] = []
        self._first = 0.0  # monotonic time of the oldest pending row
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        _all_buffers.add(self)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: list[MetricRow]) -> None:
        with self._lock:
            if not self._rows:
                self._first = time.monotonic()
                self._start_flusher()
                self._wake.notify()
            self._rows.extend(rows)
            if len(self._rows) >= self.max_rows:
                self._flush_locked()

    def take(self) -> list[MetricRow]:
        """Remove and return every pending row (the caller writes them)."""
        with self._lock:
            rows, self._rows = self._rows, []
            return rows

    def put_back(self, rows: list[MetricRow]) -> None:
        """Return rows a failed write could not store, ahead of newer ones."""
        with self._lock:
            if rows and not self._rows:
                self._first = time.monotonic()
                self._wake.notify()
            self._rows[:0] = rows

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        rows = self.take()
        if not rows:
            return
        try:
            self.ws.store.write_metrics(rows)
        except BaseException:
            self.put_back(rows)
            raise

    def _start_flusher(self) -> None:
        # One long-lived daemon thread per buffer, not a timer per batch.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._flush_loop, daemon=True,
                                            name="cellops-metric-flush")
            self._thread.start()

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._rows:
                    self._wake.wait()
                deadline = self._first + self.max_age_s
                while self._rows and (left := deadline - time.monotonic()) > 0:
                    self._wake.wait(left)
                    deadline = self._first + self.max_age_s
                if not self._rows:
                    continue
                try:
                    self._flush_locked()
                    continue
                except CellopsError as exc:
                    warnings.warn(f"cellops could not write buffered metrics yet: {exc}",
                                  stacklevel=1)
                    self._first = time.monotonic()  # try again one period later

    def _forget_after_fork(self) -> None:
        # The parent owns these rows; a forked child must not write them twice.
        self._rows = []
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread = None


def flush_all() -> None:
    for buf in list(_all_buffers):
        buf.flush()


def _after_fork_in_child() -> None:
    for buf in list(_all_buffers):
        buf._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
