"""Batched writes: rows logged in a hot loop wait in memory and reach the database in batches.

:class:`BatchWriter` keeps rows in a list; they are written in one transaction when
the list reaches ``max_rows``, ``max_age_s`` after its oldest row (one daemon thread
per writer), when the owner asks (:meth:`BatchWriter.flush`, :meth:`BatchWriter.take`)
and at interpreter exit. Metric points use it today; any per-row log (predictions)
can.

What a failed write does, so that one bad row never costs anyone else their data:

- The database is busy (another process holds the lock past the retry budget): every
  row goes back into the buffer, in order, and the next flush tries again.
- Anything else (a row the database refuses, such as a point of a run another process
  deleted): the rows are written again one *partition* (a row's first field: the run
  id) at a time, so every other partition's rows are stored. The failing partition's
  rows are dropped with one warning that names it, the count and the cause; the
  failure is remembered, later :meth:`add` calls for that partition raise, and
  :func:`dropped_report` lists every drop (printed at interpreter exit).

The flusher thread never dies: an unexpected error is warned about and retried.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import CellopsError, CellopsWarning, StoreBusyError

Row = Sequence[Any]

_all_writers: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


@dataclass
class Dropped:
    """Rows of one partition that could not be stored: how many, and why."""

    count: int
    cause: str


class BatchWriter:
    """Buffers rows and writes them with ``write(rows)`` (one transaction per call).

    ``refuse(partition, dropped)`` builds the exception :meth:`add` raises for a
    partition whose rows were dropped; ``what`` names the rows in messages.
    """

    def __init__(
        self,
        write: Callable[[list[Row]], None],
        *,
        what: str = "rows",
        refuse: Callable[[Any, Dropped], Exception] | None = None,
        max_rows: int = 5000,
        max_age_s: float = 2.0,
        name: str = "cellops-flush",
    ) -> None:
        self._write = write
        self.what = what
        self._refuse = refuse
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.name = name
        self.dropped: dict[Any, Dropped] = {}
        self._rows: list[Row] = []
        self._first = 0.0  # monotonic time of the oldest pending row
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        _all_writers.add(self)

    def __len__(self) -> int:
        return len(self._rows)

    # -- adding and taking ---------------------------------------------------
    def add(self, rows: list[Row]) -> None:
        """Queue rows; raises the ``refuse`` error when a partition's rows were dropped."""
        with self._lock:
            if self.dropped:
                for row in rows:
                    self.check(row[0])
            if not self._rows:
                self._first = time.monotonic()
                self._start_flusher()
                self._wake.notify()
            self._rows.extend(rows)
            if len(self._rows) >= self.max_rows:
                self._flush_locked()

    def add_one(self, row: Row) -> None:
        """Queue one row (:meth:`add` without a list to build: the per-step path)."""
        with self._lock:
            if self.dropped:
                self.check(row[0])
            if not self._rows:
                self._first = time.monotonic()
                self._start_flusher()
                self._wake.notify()
            self._rows.append(row)
            if len(self._rows) >= self.max_rows:
                self._flush_locked()

    def take(self, partition: Any = None) -> list[Row]:
        """Remove and return the pending rows (of one partition, when given); the caller
        writes them or hands them back with :meth:`put_back` / :meth:`drop`."""
        with self._lock:
            if partition is None:
                rows, self._rows = self._rows, []
                return rows
            taken = [r for r in self._rows if r[0] == partition]
            if taken:
                self._rows = [r for r in self._rows if r[0] != partition]
            return taken

    def put_back(self, rows: list[Row]) -> None:
        """Return rows a busy database could not take, ahead of newer ones."""
        with self._lock:
            if rows and not self._rows:
                self._first = time.monotonic()
                self._start_flusher()
                self._wake.notify()
            self._rows[:0] = rows

    def failure(self, partition: Any) -> Dropped | None:
        """How many rows of ``partition`` were dropped and why, or None."""
        return self.dropped.get(partition)

    def check(self, partition: Any) -> None:
        """Raise the ``refuse`` error when rows of ``partition`` were dropped."""
        failure = self.dropped.get(partition)
        if failure is not None:
            raise self._refusal(partition, failure)

    def drop(self, partition: Any, rows: list[Row], exc: BaseException) -> None:
        """Give up on ``rows`` of ``partition`` (and any still queued): count them, warn once."""
        with self._lock:
            queued = self.take(partition)
            count = len(rows) + len(queued)
            cause = _cause(exc)
            failure = self.dropped.get(partition)
            if failure is None:
                self.dropped[partition] = Dropped(count, cause)
            else:
                failure.count += count
        if count:
            warnings.warn(
                f"cellops could not store {count} {self.what} of {_label(partition)}: {cause}. "
                f"They were dropped; logging more to it raises an error.",
                CellopsWarning, stacklevel=2)

    def _refusal(self, partition: Any, failure: Dropped) -> Exception:
        if self._refuse is not None:
            return self._refuse(partition, failure)
        return CellopsError(f"{failure.count} {self.what} of {_label(partition)} could not be "
                            f"stored ({failure.cause}).")

    # -- writing ---------------------------------------------------------------
    def flush(self) -> None:
        """Write every pending row now (busy: they stay queued and StoreBusyError is raised)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        rows = self.take()
        if rows:
            self.write_isolated(rows)

    def write_isolated(self, rows: list[Row]) -> None:
        """Write ``rows``: all in one transaction, or failing that one partition at a time."""
        try:
            self._write(rows)
            return
        except StoreBusyError:
            self.put_back(rows)
            raise
        except Exception as exc:  # noqa: BLE001 - isolated below, per partition
            first_error = exc
        except BaseException:
            self.put_back(rows)
            raise
        groups: dict[Any, list[Row]] = {}
        for row in rows:
            groups.setdefault(row[0], []).append(row)
        if len(groups) == 1:
            self.drop(rows[0][0], rows, first_error)
            return
        busy: StoreBusyError | None = None
        for partition, part in groups.items():
            try:
                self._write(part)
            except StoreBusyError as exc:
                self.put_back(part)
                busy = exc
            except Exception as exc:  # noqa: BLE001 - this partition alone loses its rows
                self.drop(partition, part, exc)
        if busy is not None:
            raise busy

    def _start_flusher(self) -> None:
        # One long-lived daemon thread per writer, not a timer per batch.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._flush_loop, daemon=True, name=self.name)
            self._thread.start()

    def _flush_loop(self) -> None:
        while True:
            try:
                self._flush_when_due()
            except BaseException as exc:  # noqa: BLE001 - the flusher must never die
                if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    return
                warnings.warn(f"cellops could not write buffered {self.what} yet ({_cause(exc)}); "
                              "retrying.", CellopsWarning, stacklevel=1)
                with self._lock:
                    self._first = time.monotonic()  # try again one period later

    def _flush_when_due(self) -> None:
        with self._lock:
            while not self._rows:
                self._wake.wait()
            deadline = self._first + self.max_age_s
            while self._rows and (left := deadline - time.monotonic()) > 0:
                self._wake.wait(left)
                deadline = self._first + self.max_age_s
            if self._rows:
                self._flush_locked()

    def _forget_after_fork(self) -> None:
        # The parent owns these rows; a forked child must not write them twice.
        self._rows = []
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread = None


def _cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _label(partition: Any) -> str:
    return f"run {partition[:8]}" if isinstance(partition, str) else repr(partition)


def flush_all() -> None:
    """Flush every writer of this process."""
    for writer in list(_all_writers):
        writer.flush()


def final_flush() -> list[str]:
    """At interpreter exit: flush every writer, counting what cannot be written as dropped;
    return one line per partition whose rows were dropped during the process's life."""
    for writer in list(_all_writers):
        rows = writer.take()
        if not rows:
            continue
        try:
            writer.write_isolated(rows)
        except BaseException as exc:  # noqa: BLE001 - nothing may be lost without a word
            groups: dict[Any, int] = {}
            for row in writer.take():  # what the database did not take

                groups[row[0]] = groups.get(row[0], 0) + 1
            for partition, count in groups.items():
                failure = writer.dropped.setdefault(partition, Dropped(0, _cause(exc)))
                failure.count += count
    return dropped_report()


def dropped_report() -> list[str]:
    """One line per partition whose rows were dropped in this process."""
    lines = []
    for writer in list(_all_writers):
        for partition, failure in writer.dropped.items():
            if failure.count:
                lines.append(f"{failure.count} {writer.what} of {_label(partition)} were not "
                             f"stored: {failure.cause}")
    return lines


def _after_fork_in_child() -> None:
    for writer in list(_all_writers):
        writer._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
