"""The prediction log: every request a server answers (and every chunk a batch scores),
kept in the workspace for monitoring.

A request hands :meth:`PredictionLog.record` its inputs and outputs — an append to a
bounded in-memory queue, nothing more. A background thread turns entries into rows
(inputs by column: :func:`encode_inputs`) and feeds the store's batched writer, which writes them in transactions of
hundreds. When the database cannot keep up (another process holds it, a slow disk), the
queue fills to ``max_pending`` entries (or ``max_pending_mb`` of inputs, for large
requests); then a server **drops the oldest** entries to make room and counts it (``dropped``, the ``/metrics`` counter, a warning at most every ten
seconds) — requests are never slowed by the log. A batch job (``block=True``) waits
instead, so a batch's log is complete.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import CellopsError, StoreBusyError
from ..store import now_ms
from ..workspaces import Workspace
from .payloads import Inputs

__all__ = ["LogEntry", "PredictionLog", "new_request_id"]

_log = logging.getLogger("cellops.serving")


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class LogEntry:
    request_id: str
    at: int  # ms
    model: str
    version: int | None
    source: str  # "http" | "batch"
    inputs: Inputs | None
    outputs: Any  # ndarray or None
    latency_ms: float | None
    status: int
    error: str | None = None

    @cached_property
    def nbytes(self) -> int:
        """About how much memory the entry's inputs hold (counted in and out of the queue)."""
        if self.inputs is None:
            return 256
        if self.inputs.array is not None:
            return int(self.inputs.array.nbytes) + 256
        return int(self.inputs.frame.memory_usage(deep=False).sum()) + 256

    def row(self) -> tuple[Any, ...]:
        n = self.inputs.n_rows if self.inputs is not None else 0
        inputs = encode_inputs(self.inputs) if self.inputs is not None else None
        outputs = _dumps(np.asarray(self.outputs).tolist()) if self.outputs is not None else None
        return (self.model, self.request_id, self.at, self.version, self.source, n, inputs,
                outputs, self.latency_ms, self.status, self.error)


_PACKED = b"cellops-columns\n"  # then a JSON header line, then the float64 values by column


def encode_inputs(inputs: Inputs) -> str | bytes:
    """How the log stores a request's inputs. All-numeric rows: a compact binary form (a
    JSON header with the column names and shape, then the float64 values column by column),
    which costs microseconds where JSON would cost milliseconds for large requests; any
    other rows: JSON, column name -> values. :func:`decode_inputs` reads both."""
    array = inputs.array
    if array is not None and array.ndim == 2 and array.dtype == np.float64:
        names = inputs.columns or [str(i) for i in range(array.shape[1])]
        header = json.dumps({"columns": names, "rows": int(array.shape[0])}).encode()
        return _PACKED + header + b"\n" + np.ascontiguousarray(array.T).tobytes()
    return _dumps(inputs.by_column())


def decode_inputs(value: str | bytes | None) -> dict[str, list[Any]]:
    """Column name -> values, from what :func:`encode_inputs` stored (NaN comes back as None)."""
    if not value:
        return {}
    if isinstance(value, bytes) and value.startswith(_PACKED):
        header_end = value.index(b"\n", len(_PACKED))
        header = json.loads(value[len(_PACKED):header_end])
        names, rows = header["columns"], header["rows"]
        data = np.frombuffer(value, dtype=np.float64, offset=header_end + 1).reshape(len(names), rows)
        return {name: [None if v != v else v for v in data[i].tolist()]
                for i, name in enumerate(names)}
    return json.loads(value)


def _dumps(value: Any) -> str:
    # NaN is written as null: the log stays plain JSON for any reader.
    text = json.dumps(value, separators=(",", ":"), default=str)
    if "NaN" in text or "Infinity" in text:
        text = json.dumps(_nan_to_none(value), separators=(",", ":"), default=str)
    return text


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


class PredictionLog:
    """A bounded queue in front of the store's batched writer, drained by one thread."""

    def __init__(self, ws: Workspace, *, max_pending: int = 10_000, max_pending_mb: float = 256,
                 block: bool = False,
                 flush_rows: int = 500, flush_s: float = 1.0) -> None:
        self.workspace = ws
        self.max_pending = max_pending
        self.max_pending_bytes = int(max_pending_mb * 2**20)
        self._bytes = 0  # inputs held in the queue
        self.block = block
        self.dropped = 0
        self._queue: deque[LogEntry] = deque()
        self._cond = threading.Condition()
        self._writer = ws.store.predictions.writer(max_rows=flush_rows, max_age_s=flush_s)
        self._stop = False
        self._moving = 0  # entries taken from the queue, not yet in the writer
        self._warned_at = 0.0
        self._thread = threading.Thread(target=self._drain, daemon=True, name="cellops-prediction-log")
        self._thread.start()

    @property
    def depth(self) -> int:
        """Entries not yet handed to the database."""
        return len(self._queue) + len(self._writer)

    def record(self, entry: LogEntry) -> None:
        """Queue one entry: O(1); drops the oldest when full (or waits, with ``block``)."""
        size = entry.nbytes
        with self._cond:
            if self._stop:
                raise CellopsError("The prediction log is closed.")
            if self._full(size):
                if self.block:
                    while self._full(size) and self._queue and not self._stop:
                        self._cond.wait(0.5)
                else:
                    while self._queue and self._full(size):
                        self._bytes -= self._queue.popleft().nbytes
                        self.dropped += 1
                    now = time.monotonic()
                    if now - self._warned_at > 10:
                        self._warned_at = now
                        _log.warning("cellops: the prediction log is %d entries behind the database; "
                                     "dropped %d oldest so far (requests are not slowed)",
                                     len(self._queue), self.dropped)
            self._queue.append(entry)
            self._bytes += size
            self._cond.notify_all()

    def _full(self, size: int) -> bool:
        return (len(self._queue) >= self.max_pending
                or self._bytes + size > self.max_pending_bytes and bool(self._queue))

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if not self._queue and self._stop:
                    return
                # The writer holds at most two flushes' worth: past that the queue waits.
                room = max(0, 2 * self._writer.max_rows - len(self._writer))
                batch = [self._queue.popleft() for _ in range(min(room, len(self._queue)))]
                self._bytes -= sum(e.nbytes for e in batch)
                self._moving = len(batch)
                self._cond.notify_all()
            if not batch:
                self._flush_quietly()
                time.sleep(0.05)
                continue
            try:
                rows = [e.row() for e in batch]
                self._writer.add(rows)  # may write a full batch now; busy keeps the rows
            except StoreBusyError:
                pass
            except Exception as exc:  # noqa: BLE001 - the drainer must not die
                _log.warning("cellops: could not log %d prediction(s): %s", len(batch), exc)
            finally:
                with self._cond:
                    self._moving = 0

    def _flush_quietly(self) -> None:
        try:
            self._writer.flush()
        except Exception as exc:  # noqa: BLE001 - busy: the rows stay queued, tried again
            _log.debug("cellops: prediction log flush deferred: %s", exc)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; True when it all reached the database."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                empty = not self._queue and not self._moving
            if empty:
                try:
                    self._writer.flush()
                except Exception:  # noqa: BLE001 - retried until the deadline
                    time.sleep(0.1)
                    continue
                with self._cond:
                    if not self._queue and not self._moving and not len(self._writer):
                        return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 30.0) -> bool:
        """Flush and stop the drainer; True when nothing was left unwritten."""
        done = self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        return done

    def entry(self, *, request_id: str, model: str, version: int | None, source: str,
              inputs: Inputs | None, outputs: Any, latency_ms: float | None, status: int,
              error: str | None = None) -> LogEntry:
        return LogEntry(request_id, now_ms(), model, version, source, inputs, outputs,
                        latency_ms, status, error)
